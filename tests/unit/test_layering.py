"""Imports only go down: the layers of docs/architecture.md, checked on every import in src/.

Every import counts, including those inside functions and under TYPE_CHECKING: an import
moved into a function to dodge a cycle is still the same dependency.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "exapg"

# Lowest first. A module may import its own package and any lower layer; in the
# foundation, modules may also import each other.
LAYERS: list[set[str]] = [
    {"exapg", "exapg.errors", "exapg.settings", "exapg.status", "exapg.proc", "exapg.passwords",
     "exapg.addresses", "exapg.certs", "exapg.config_check"},
    {"exapg.postgres", "exapg.exporter", "exapg.tpch"},
    {"exapg.credentials"},
    {"exapg.cluster", "exapg.backup"},
    {"exapg.state"},
    {"exapg.stack"},
    {"exapg.monitoring"},
    {"exapg.runtime"},
    {"exapg.api"},
    {"exapg.cli"},
    {"exapg.__main__"},
]
# What the API may use of the runtime: the stack's service health, and the backups (the
# functions `exapg backup` and `backup list` run: pgBackRest and the nodes' SQL, no
# orchestrator, supervisor or program), the latter through the stack access alone.
API_MAY_USE_OF_RUNTIME = {"exapg.runtime.service_health": None, "exapg.runtime.backup": {"exapg.api.access"}}
# The orchestrator is reached through the backend choice only.
ORCHESTRATOR = "exapg.runtime.local"
ORCHESTRATOR_USERS = {"exapg.runtime.backends", "exapg.cli"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module imported (for `from a import b`: a.b when b is a module, else a)
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (SRC / relative).with_suffix(".py").is_file() or (SRC / relative / "__init__.py").is_file()


def imports() -> list[Import]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        source = module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [Import(source, a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "exapg"]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and node.module.split(".")[0] == "exapg":
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    found.append(Import(source, candidate if is_module(candidate) else node.module, node.lineno))
    return found


def package(name: str) -> str:
    """The unit layers are made of: a top-level module or package (exapg.runtime, exapg.stack)."""
    return ".".join(name.split(".")[:2])


def layer(name: str) -> int:
    unit = package(name)
    for index, members in enumerate(LAYERS):
        if unit in members:
            return index
    raise AssertionError(f"{unit} is in no layer: add it to LAYERS and to docs/architecture.md")


def allowed(imp: Import) -> str | None:
    """None when the import goes down; else why not."""
    source, target = package(imp.source), package(imp.target)
    if source == target:
        return None
    if layer(imp.target) > layer(imp.source):
        return f"{target} is above {source}"
    if layer(imp.target) == layer(imp.source) and layer(imp.source) != 0:
        return f"{source} and {target} are in the same layer"
    if source == "exapg.api" and target == "exapg.runtime":
        if imp.target not in API_MAY_USE_OF_RUNTIME:
            return "the API uses only the runtime's service health and backups"
        importers = API_MAY_USE_OF_RUNTIME[imp.target]
        if importers is not None and imp.source not in importers:
            return f"the API reaches {imp.target} only through {', '.join(sorted(importers))}"
    return None


def test_every_module_is_in_a_layer():
    for path in SRC.rglob("*.py"):
        layer(module_name(path))


def test_imports_only_go_down():
    wrong = [f"{i.source}:{i.line} imports {i.target}: {why}" for i in imports() if (why := allowed(i))]
    assert not wrong, "\n".join(wrong)


def test_only_the_backend_choice_and_the_cli_reach_the_orchestrator():
    users = {i.source for i in imports() if i.target == ORCHESTRATOR}
    assert {u for u in users if package(u) not in ORCHESTRATOR_USERS and u not in ORCHESTRATOR_USERS} == set()


@pytest.mark.parametrize("imp, reason", [
    (Import("exapg.exporter.collector", "exapg.runtime.base", 1), "above"),
    (Import("exapg.api.app", "exapg.runtime.local", 1), "service health"),
    (Import("exapg.cluster.citus", "exapg.stack", 1), "above"),
    (Import("exapg.postgres.conn", "exapg.exporter.target", 1), "same layer"),
    (Import("exapg.api.app", "exapg.runtime.supervised", 1), "service health"),
    (Import("exapg.api.routers.backups", "exapg.runtime.backup", 1), "only through exapg.api.access"),
])
def test_the_rule_refuses_what_it_should(imp, reason):
    assert reason in (allowed(imp) or "")


def test_the_rule_lets_through_what_it_should():
    for imp in (Import("exapg.api.access", "exapg.runtime.service_health", 1),
                Import("exapg.api.access", "exapg.runtime.backup", 1),
                Import("exapg.runtime.nodes", "exapg.stack", 1),
                Import("exapg.credentials", "exapg.settings", 1)):
        assert allowed(imp) is None
