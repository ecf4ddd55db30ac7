"""One verdict on a standby: the health checks' thresholds are the alert rules' numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from exapg.cluster import health
from exapg.cluster.probe import Downstream, NodeReport, Upstream, judge
from exapg.cluster.topology import Mode, Topology
from exapg.settings import Settings

RULES = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus" / "rules"
MiB = 1024**2


def alert_rules() -> dict[str, dict]:
    rules = {}
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.update({rule["alert"]: rule for rule in group["rules"] if "alert" in rule})
    return rules


def threshold(expr: str) -> float:
    """The number `metric > N` compares with; N may be a product (100 * 1024 * 1024)."""
    match = re.fullmatch(r"[^>]*>\s*([\d.\s*]+)", expr.strip())
    assert match, f"not of the form 'metric > number': {expr}"
    value = 1.0
    for factor in match.group(1).split("*"):
        value *= float(factor)
    return value


@pytest.mark.parametrize(("alert", "number"), sorted(health.ALERT_THRESHOLDS.items()))
def test_rule_files_use_the_health_check_numbers(alert: str, number: float):
    rule = alert_rules()[alert]
    assert 'instance="standby"' in rule["expr"]
    assert threshold(rule["expr"]) == number, (alert, rule["expr"])


def test_the_conditions_the_check_fails_on_have_alerts():
    rules = alert_rules()
    assert rules["StandbyReplayPaused"]["expr"].startswith("pg_wal_replay_paused == 1")
    assert "pg_wal_receivers" in rules["StandbyNotStreaming"]["expr"]


def problems(**given: object) -> list[str]:
    values: dict[str, object] = {"primary": "coordinator", "in_recovery": True, "receiver_status": "streaming",
                                 "replay_paused": False, "lag_bytes": 0.0, "lag_seconds": 0.0}
    return health.standby_problems(**{**values, **given})  # type: ignore[arg-type]


def test_standby_verdicts():
    assert problems() == []
    assert problems(lag_bytes=None, lag_seconds=None) == []
    # the outside probe's standby: replay paused, 43 MB and 22 s behind
    paused = problems(replay_paused=True, lag_bytes=43 * MiB, lag_seconds=22.0)
    assert len(paused) == 1 and "replay is paused" in paused[0]
    assert "WAL behind" in problems(lag_bytes=100 * MiB + 1)[0]
    assert problems(lag_bytes=100 * MiB) == []
    assert "late" in problems(lag_seconds=31.0)[0]
    assert problems(receiver_status=None)[0].startswith("not streaming from coordinator (WAL receiver: stopped)")
    assert "promoted" in problems(in_recovery=False)[0]


def test_the_reports_the_api_serves_carry_the_verdict():
    topology = Topology.build(Settings.load(environ={"EXAPG_ENV_FILE": "/none"}), Mode.HA, 0, True)
    standby = topology.node("standby")
    fine = NodeReport("standby", "standby", "127.0.0.1", standby.port, True, "standby",
                      upstream=Upstream("streaming", "127.0.0.1", 5432, "standby", 0.0, 0.0, False))
    assert judge(standby, fine) == fine
    lagging = NodeReport(**{**fine.to_dict(), "upstream": Upstream(
        "streaming", "127.0.0.1", 5432, "standby", 43.0 * MiB, 22.0, True)})
    judged = judge(standby, lagging)
    assert judged.healthy is False and "replay is paused" in (judged.error or "")
    primary = NodeReport("coordinator", "coordinator", "127.0.0.1", 5432, True, "primary",
                         downstream=[Downstream("standby", None, "streaming", "async", 43.0 * MiB, 22.0)])
    assert judge(topology.coordinator, primary) == primary
