"""`exapg` loads only what the command at hand uses.

A command module names its heavy libraries inside its functions, so `exapg --help` loads
none of them and `exapg status` only what status needs (pydantic for the settings, psycopg
only for a stack with a standby or workers). Checked on the set of modules a fresh
interpreter holds after the command, not on a timing: the timings are in bench/cli.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Runs one command in a fresh interpreter, then writes the names of the loaded modules.
PROBE = """
import json, sys
from exapg.cli.main import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump(sorted(sys.modules), out)
"""

# The management API and its HTTP stack, TPC-H's DuckDB, TLS certificates, the exporter's
# metrics, the API's password hashing and tokens, Prometheus's configuration, and the
# supervisor package (its daemon is asked over the standard library's XML-RPC client).
NEVER_FOR_STATUS = {"fastapi", "starlette", "uvicorn", "httpx", "duckdb", "cryptography", "prometheus_client",
                    "argon2", "jwt", "yaml", "supervisor"}
# What status needs and help does not: the database, the .env file.
NEVER_FOR_HELP = NEVER_FOR_STATUS | {"psycopg", "psycopg_binary", "psycopg_pool", "asyncio", "dotenv"}
# pydantic (the settings) too for `exapg --help`; a subcommand's help has it from Typer
# itself, which checks the parsed values of the group's options with pydantic.
NEVER_FOR_ROOT_HELP = NEVER_FOR_HELP | {"pydantic", "pydantic_core"}
# The orchestrator's steps status does not take (runtime/local.py imports them in its verbs),
# and the probes of standbys and Citus workers, which come with psycopg.
STEPS = ("preflight", "nodes", "scaling", "roles", "backup", "archiving", "logs")
STEPS_NOT_FOR_STATUS = {f"exapg.runtime.{name}" for name in STEPS} | {"exapg.cluster.probe", "exapg.cluster.citus"}
# A standalone stack's status opens no connection: no psycopg.
NEVER_FOR_STANDALONE_STATUS = NEVER_FOR_STATUS | {"psycopg", "psycopg_binary", "psycopg_pool"}


def loaded(tmp_path: Path, *args: str, state: dict[str, object] | None = None) -> set[str]:
    """The modules loaded by `exapg ARGS`, on a stack that was never set up, or whose state
    file says `state` (nothing of it created or running)."""
    out = tmp_path / "modules.json"
    if state is not None:
        (tmp_path / "stack").mkdir()
        (tmp_path / "stack" / "state.json").write_text(json.dumps({"version": 1, **state}))
    env = {**os.environ, "EXAPG_STATE_DIR": str(tmp_path / "stack"), "EXAPG_ENV_FILE": "/nonexistent/.env",
           "EXAPG_BACKEND": "local"}
    done = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], capture_output=True, text=True,
                          timeout=60, check=False, env=env)
    assert out.exists(), done.stderr
    return set(json.loads(out.read_text()))


def packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("args", [["--help"], []])
def test_help_loads_no_heavy_library(tmp_path, args):
    assert packages(loaded(tmp_path, *args)) & NEVER_FOR_ROOT_HELP == set()


@pytest.mark.parametrize("command", [["status"], ["health"], ["backup"], ["certs"], ["compose"], ["bench", "tpch"],
                                     ["exporter"], ["sample", "tpch"]])
def test_a_commands_help_loads_no_heavy_library(tmp_path, command):
    assert packages(loaded(tmp_path, *command, "--help")) & NEVER_FOR_HELP == set()


@pytest.mark.parametrize("command", ["status", "health"])
def test_status_loads_only_what_it_uses(tmp_path, command):
    found = loaded(tmp_path, command)
    assert "exapg.runtime.service_health" in found  # it got as far as asking the stack
    assert packages(found) & (NEVER_FOR_STATUS | {"typer", "click"}) == set()
    assert found & STEPS_NOT_FOR_STATUS == set()


@pytest.mark.parametrize("command", ["status", "health"])
def test_a_standalone_stacks_status_loads_no_psycopg(tmp_path, command):
    found = loaded(tmp_path, command, state={"project": "exapg", "mode": "standalone", "workers": 0,
                                             "standby": False})
    assert "exapg.runtime.supervised" in found  # it got as far as asking the supervisor
    assert packages(found) & NEVER_FOR_STANDALONE_STATUS == set()
    assert found & STEPS_NOT_FOR_STATUS == set()


def test_a_standby_is_probed_with_psycopg(tmp_path):
    """The checks above can fail: status on an ha stack loads the probe and psycopg."""
    found = loaded(tmp_path, "status", state={"project": "exapg", "mode": "ha", "workers": 0, "standby": True})
    assert {"exapg.cluster.probe", "psycopg"} <= found


def test_the_probe_sees_a_heavy_import(tmp_path):
    """The check above can fail: a command that does load one is seen."""
    assert "cryptography" in packages(loaded(tmp_path, "certs", str(tmp_path / "ssl")))


@pytest.mark.parametrize("args", [["status", "--json"], ["health", "--backend", "local"], ["--debug", "health"],
                                  ["status", "--backend=local", "--json"]])
def test_plain_status_and_health_run_without_typer(tmp_path, args):
    assert packages(loaded(tmp_path, *args)) & {"typer", "click"} == set()


@pytest.mark.parametrize("args", [["status", "--help"], ["status", "--bogus"], ["health", "--json", "--json"]])
def test_anything_else_goes_through_typer(tmp_path, args):
    """The check above can fail: help and bad options are Typer's."""
    assert "typer" in packages(loaded(tmp_path, *args))
