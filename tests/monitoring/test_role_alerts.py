"""Promotions seen through a real Prometheus, with the alert rules as shipped.

A stack of its own (it gets promoted), the replication exporter with the stack's servers
named `coordinator` and `standby`, and Prometheus scraping and evaluating every second
(the rules' own `for:` durations are kept). A standby promoted by hand while the primary
runs must raise MultiplePrimaries within 2 minutes and keep its configured name in every
alert; a failover that ExaPG records must be told apart from one it did not.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from exapg.cluster.roles import RoleChangeKind, latest_role_changes, record_role_change
from exapg.exporter.collector import ReplicationCollector
from exapg.exporter.environment import ExporterConfig
from exapg.exporter.server import serve
from exapg.monitoring.prometheus_config import render_prometheus_config
from exapg.postgres.conn import connect
from exapg.runtime.programs import prometheus as prometheus_program
from tests.conftest import Stack, free_port
from tests.monitoring.promql import MONITORING
from tests.monitoring.test_live import http_get, wait_until

pytestmark = pytest.mark.integration

RULES_DIR = MONITORING / "prometheus" / "rules"
STEP = "1s"  # scrape and evaluation interval of this test's Prometheus
ROLE_ALERTS = {"MultiplePrimaries", "StandbyNotInRecovery", "PrimaryTimelineChanged",
               "PrimaryTimelineChangedPlanned"}
# what fired in the last 2 minutes, of the alerts a recorded failover must not raise
FIRED = 'ALERTS{alertname=~"PrimaryTimelineChanged|MultiplePrimaries", alertstate="firing"}[2m]'
DESCRIPTION = ("coordinator (configured primary) on timeline 1, standby (configured standby) on "
               "timeline 2 all accept writes. Stop writes to the one that is not the primary of "
               "record and rebuild it as a standby.")


@dataclass
class Watched:
    stack: Stack
    prometheus: str  # base URL of its HTTP API

    def query(self, expr: str) -> list[dict]:
        url = f"{self.prometheus}/api/v1/query?query={urllib.parse.quote(expr)}"
        return json.loads(http_get(url))["data"]["result"]

    def alerts(self, state: str | None = None) -> dict[str, list[dict]]:
        found: dict[str, list[dict]] = {}
        for alert in json.loads(http_get(f"{self.prometheus}/api/v1/alerts"))["data"]["alerts"]:
            if state is None or alert["state"] == state:
                found.setdefault(alert["labels"]["alertname"], []).append(alert)
        return found

    def firing(self, name: str) -> list[dict]:
        return self.alerts("firing").get(name, [])

    def wait_firing(self, name: str, timeout: float) -> dict:
        alerts = wait_until(lambda: self.firing(name), timeout, f"{name} to fire")
        assert len(alerts) == 1, alerts
        return alerts[0]


def exporter_environment(stack: Stack, port: int) -> dict[str, str]:
    return {
        "PRIMARY_HOST": "127.0.0.1", "PRIMARY_PORT": str(stack.coordinator.port),
        "PRIMARY_NAME": "coordinator",
        "STANDBY_HOSTS": f"standby=127.0.0.1:{stack.standby.port}",
        "POSTGRES_DB": stack.settings.postgres_db, "POSTGRES_USER": stack.settings.postgres_user,
        "POSTGRES_PASSWORD_FILE": str(stack.password_file),
        "EXPORTER_PORT": str(port), "EXPORTER_LISTEN_ADDRESS": "127.0.0.1",
        "POSTGRES_SSLMODE": "disable",
    }


def prometheus_config(exporter_port: int) -> str:
    """The local runtime's configuration (honor_labels included), every second."""
    rendered = render_prometheus_config({"replication_exporter": f"127.0.0.1:{exporter_port}"},
                                        RULES_DIR)
    config = yaml.safe_load(rendered)
    config["global"].update(scrape_interval=STEP, evaluation_interval=STEP, scrape_timeout=STEP)
    return yaml.safe_dump(config, sort_keys=False)


def start_prometheus(binary: str, workdir: Path, exporter_port: int, port: int) -> subprocess.Popen:
    config = workdir / "prometheus.yml"
    config.write_text(prometheus_config(exporter_port))
    return subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def watched(make_stack, tmp_path) -> Iterator[Watched]:
    binary = prometheus_program.binary()
    if not binary:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    stack = make_stack()
    exporter_port, prometheus_port = free_port(), free_port()
    config = ExporterConfig.from_env(exporter_environment(stack, exporter_port))
    collector = ReplicationCollector(config)
    server = serve(collector, config.listen_address, config.port)
    prometheus = start_prometheus(binary, tmp_path, exporter_port, prometheus_port)
    try:
        base = f"http://127.0.0.1:{prometheus_port}"
        wait_until(lambda: http_get(f"{base}/-/ready"), 60, "Prometheus to be ready")
        yield Watched(stack, base)
    finally:
        prometheus.terminate()
        try:
            prometheus.wait(timeout=15)
        except subprocess.TimeoutExpired:
            prometheus.kill()
        server.shutdown()
        server.server_close()
        collector.close()


def wait_for_a_healthy_pair(watched: Watched) -> None:
    """Both servers scraped on timeline 1, rules evaluated since, no role alert."""
    wait_until(lambda: len(watched.query('pg_timeline_id{job="replication_exporter"} == 1')) == 2,
               60, "both servers on timeline 1 in Prometheus")
    time.sleep(3)  # a few evaluations over the healthy pair
    assert not set(watched.alerts()) & ROLE_ALERTS


def pooled(stack: Stack, statement: str) -> None:
    with connect(stack.pgbouncer) as conn:
        conn.execute(statement)


def test_standby_promoted_by_hand_raises_multiple_primaries_and_rejoin_repairs_it(watched):
    stack = watched.stack
    pooled(stack, "CREATE TABLE kept (id int PRIMARY KEY)")
    pooled(stack, "INSERT INTO kept VALUES (1)")
    wait_for_a_healthy_pair(watched)
    promoted_at = time.monotonic()
    stack.standby_server.promote(timeout=60)  # pg_ctl promote, the primary still running
    pooled(stack, "INSERT INTO kept VALUES (2)")  # pgBouncer serves the configured primary
    with connect(stack.standby) as conn:
        conn.execute("INSERT INTO kept VALUES (3)")  # a stray write on the promoted side

    split = watched.wait_firing("MultiplePrimaries", 120)
    fired_after = time.monotonic() - promoted_at
    print(f"MultiplePrimaries fired {fired_after:.1f} s after pg_ctl promote")
    assert fired_after < 120
    assert split["labels"]["severity"] == "critical"
    assert split["annotations"]["description"] == DESCRIPTION

    # the promoted server keeps its configured name and role in every alert about it
    promoted = watched.wait_firing("StandbyNotInRecovery", 30)
    assert {k: promoted["labels"][k] for k in ("server", "instance")} == {
        "server": "standby", "instance": "standby"}
    assert float(promoted["value"]) == 2
    streaming = watched.alerts()["StandbyNotStreaming"]  # pending: its `for` is 2m
    assert [(a["labels"]["server"], a["labels"]["instance"]) for a in streaming] == [
        ("standby", "standby")]

    unplanned = watched.wait_firing("PrimaryTimelineChanged", 120 - (time.monotonic() - promoted_at))
    assert (unplanned["labels"]["server"], unplanned["labels"]["severity"]) == ("standby", "warning")
    assert "PrimaryTimelineChangedPlanned" not in watched.alerts()
    fired = watched.query(FIRED)
    assert {series["metric"]["alertname"] for series in fired} == {
        "MultiplePrimaries", "PrimaryTimelineChanged"}

    # the repair: the promoted node follows the primary pgBouncer serves again
    repaired = stack.cli("rejoin", "standby")
    assert repaired.returncode == 0, repaired.stderr
    assert stack.cli("health").returncode == 0
    ids = "SELECT array_agg(id ORDER BY id) FROM kept"
    with connect(stack.coordinator) as conn:
        assert conn.execute(ids).fetchone() == ([1, 2],), "what pgBouncer's clients committed is kept"
    with connect(stack.standby) as conn:
        assert wait_until(lambda: conn.execute(ids).fetchone() == ([1, 2],), 30, "the standby to catch up")
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    wait_until(lambda: not watched.firing("MultiplePrimaries") and not watched.firing("StandbyNotInRecovery"),
               60, "the role alerts to resolve")


def test_recorded_failover_is_planned_not_unplanned(watched):
    stack = watched.stack
    wait_for_a_healthy_pair(watched)
    stack.coordinator_server.stop()
    promoted_at = time.monotonic()
    stack.standby_server.promote(timeout=60)
    with connect(stack.standby) as conn:
        change = record_role_change(conn, kind=RoleChangeKind.FAILOVER,
                                    from_server="coordinator", to_server="standby")
        assert latest_role_changes(conn) == [change]
    assert change.timeline == 2

    planned = watched.wait_firing("PrimaryTimelineChangedPlanned", 60)
    labels = planned["labels"]
    assert (labels["server"], labels["kind"], labels["from_server"], labels["to_server"],
            labels["severity"]) == ("standby", "failover", "coordinator", "standby", "info")
    # past PrimaryTimelineChanged's `for: 1m`: it never fired, and one server is writable
    time.sleep(max(0.0, 75 - (time.monotonic() - promoted_at)))
    assert watched.query(FIRED) == []
    assert watched.firing("StandbyNotInRecovery")  # the stack has no standby left
