"""Metric names in PromQL expressions, and the names our exporters serve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
RULES = sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards" / "json").glob("*.json"))
PROMETHEUS_SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE"}
KEYWORDS = {
    "and", "or", "unless", "on", "ignoring", "by", "without", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Identifiers of `expr` that are series names (not functions, keywords or labels)."""
    text = _STRINGS.sub('""', expr)
    text = _BRACES.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for name, call in _IDENT.findall(text):
        if not call and name.lower() not in KEYWORDS:
            names.add(name)
    return names


_JOB_MATCHER = re.compile(r'(?:^|[{,])\s*job\s*=~?\s*"')


def selectors(expr: str, name: str) -> list[str]:
    """The label matchers (`{...}`, or "" when there are none) of every selector of
    metric `name` in `expr`."""
    text = _GROUPING.sub(" ", expr)
    pattern = re.compile(rf"(?<![\w:.\"']){re.escape(name)}(?![\w:])\s*(\{{[^}}]*\}})?")
    return [match.group(1) or "" for match in pattern.finditer(text)]


def has_job_matcher(matchers: str) -> bool:
    """True when `{...}` picks series by job (`job="..."` or `job=~"..."`)."""
    return bool(_JOB_MATCHER.search(matchers))


def rule_expressions() -> dict[str, str]:
    found = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found[rule.get("alert") or rule.get("record")] = rule["expr"]
    return found


def dashboard_expressions() -> dict[str, str]:
    found = {}
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found[f"{path.stem}/{panel['title']}/{target['refId']}"] = target["expr"]
    return found


def all_expressions() -> dict[str, str]:
    return {**{f"rule {k}": v for k, v in rule_expressions().items()},
            **{f"dashboard {k}": v for k, v in dashboard_expressions().items()}}


def replication_exporter_names() -> set[str]:
    """Names the replication exporter declares (counters are exposed with `_total`)."""
    from exapg.exporter.metrics import SPECS

    return {f"{name}_total" if spec.kind == "counter" else name for name, spec in SPECS.items()}


def recorded_postgres_exporter_names() -> set[str]:
    lines = (Path(__file__).parent / "postgres_exporter_metrics.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def exposition_names(text: str) -> set[str]:
    return {re.split(r"[{\s]", line, maxsplit=1)[0] for line in text.splitlines() if line and not line.startswith("#")}
