"""A real Prometheus and postgres_exporter, as the local runtime runs them, against a
running HA stack: every target is up, and every metric the rules and dashboards name
appears in a live scrape."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from exapg.runtime.programs import postgres_exporter, prometheus
from exapg.settings import Settings
from exapg.stack import Stack
from tests.docker.scratch import as_service_user, free_port
from tests.monitoring.promql import PROMETHEUS_SYNTHETIC, all_expressions, exposition_names, metric_names

pytestmark = pytest.mark.integration
# Served only once ExaPG has recorded a switchover or failover (exapg.role_changes).
RECORDED_ONLY = {"pg_replication_role_change_timeline"}

def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


def start(command, env, cwd=None, service_user=True) -> subprocess.Popen:
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", **env}
    return subprocess.Popen(list(command), env=full_env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **(as_service_user() if service_user else {}))


@pytest.fixture(scope="module")
def monitored(ha_stack) -> Iterator[dict]:
    if not prometheus.binary() or not postgres_exporter.binary():
        pytest.skip("prometheus / prometheus-postgres-exporter not installed (apt-get install them)")
    ports = {"PROMETHEUS_PORT": str(free_port()), "POSTGRES_EXPORTER_PORT": str(free_port())}
    exporter_port = free_port()
    state = Path(tempfile.mkdtemp(prefix="exapg-mon-", dir="/tmp"))
    state.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(state, "postgres", "postgres")
    settings = Settings.load(environ={**ha_stack.env, **ports, "EXAPG_STATE_DIR": str(state)})
    stack = Stack(settings)
    stack.user.make_dir(stack.run_dir, 0o700)
    stack.user.write_file(stack.password_file, ha_stack.password, 0o600)
    coordinator, standby = ha_stack.coordinator, ha_stack.standby
    prometheus.write_files(stack, {"replication_exporter": f"127.0.0.1:{exporter_port}"}, with_exporter=True)
    programs = [p for p in (postgres_exporter.program(stack, coordinator.port), prometheus.program(stack)) if p]
    replication = start(
        [sys.executable, "-m", "exapg.exporter"],
        {"PRIMARY_HOST": "127.0.0.1", "PRIMARY_PORT": str(coordinator.port),
         "STANDBY_HOST": "127.0.0.1", "STANDBY_PORT": str(standby.port),
         "POSTGRES_DB": settings.postgres_db, "POSTGRES_USER": settings.postgres_user,
         "POSTGRES_PASSWORD": ha_stack.password, "EXPORTER_PORT": str(exporter_port),
         "EXPORTER_LISTEN_ADDRESS": "127.0.0.1", "PYTHONPATH": os.pathsep.join(sys.path)},
        service_user=False,
    )
    processes = [replication] + [start(p.command, p.environment, p.directory) for p in programs]
    try:
        for program in programs:
            wait_until(lambda p=program: http_get(p.health_url), 60, f"{program.name} to answer")
        wait_until(lambda: http_get(f"http://127.0.0.1:{exporter_port}/metrics", 30), 60,
                   "the replication exporter to answer")
        yield {"programs": {p.name: p for p in programs}, "exporter_port": exporter_port, "settings": settings}
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(state, ignore_errors=True)


def test_programs_are_the_installed_binaries_on_the_configured_ports(monitored):
    programs = monitored["programs"]
    settings = monitored["settings"]
    assert set(programs) == {"prometheus", "postgres_exporter"}
    assert programs["prometheus"].port == settings.prometheus_port
    assert programs["postgres_exporter"].port == settings.postgres_exporter_port
    for program in programs.values():
        assert not any("password" in arg.lower() for arg in program.command)


def targets_up(monitored) -> dict[str, str] | None:
    url = f"http://127.0.0.1:{monitored['settings'].prometheus_port}/api/v1/targets"
    targets = json.loads(http_get(url))["data"]["activeTargets"]
    jobs = {t["labels"]["job"]: t["health"] for t in targets}
    wanted = {"prometheus", "postgres_exporter", "replication_exporter"}
    return jobs if set(jobs) == wanted and set(jobs.values()) == {"up"} else None


def test_prometheus_scrapes_every_target_up(monitored):
    assert wait_until(lambda: targets_up(monitored), 90, "every target to be up")


def test_prometheus_loaded_the_alert_rules(monitored):
    url = f"http://127.0.0.1:{monitored['settings'].prometheus_port}/api/v1/rules"
    groups = json.loads(http_get(url))["data"]["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"PostgreSQLDown", "ReplicationLagBytesHigh", "WALDiskFilling"} <= names


def test_every_metric_in_rules_and_dashboards_is_scraped_live(monitored):
    """Polled: some series (rates, per-standby lag) need a second collection to exist."""
    settings = monitored["settings"]
    wanted = set().union(*(metric_names(e) for e in all_expressions().values())) - PROMETHEUS_SYNTHETIC
    # Citus only: test_cluster.py; backups only once one was taken: tests/integration/test_backup.py
    wanted = {n for n in wanted if not n.startswith(("exapg_citus_", "exapg_backup_"))}
    wanted -= RECORDED_ONLY  # once a role change is recorded: test_role_alerts.py
    urls = [f"http://127.0.0.1:{settings.postgres_exporter_port}/metrics",
            f"http://127.0.0.1:{monitored['exporter_port']}/metrics"]
    missing = set(wanted)
    deadline = time.monotonic() + 60
    while missing and time.monotonic() < deadline:
        served = set().union(*(exposition_names(http_get(url, 30)) for url in urls))
        assert "exapg_connections_used" in served, "custom queries were not loaded"
        missing = wanted - served
        time.sleep(1)
    assert not missing, sorted(missing)


def test_healthy_stack_has_no_pending_or_firing_alert(monitored):
    """Judged on a rule evaluation made after every target had been scraped."""
    base = f"http://127.0.0.1:{monitored['settings'].prometheus_port}/api/v1"
    wait_until(lambda: targets_up(monitored), 90, "every target to be up")
    since = time.time()

    def evaluated_after() -> bool:
        groups = json.loads(http_get(f"{base}/rules"))["data"]["groups"]
        return all(g.get("lastEvaluation", "") > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since))
                   for g in groups)

    wait_until(evaluated_after, 60, "a rule evaluation after the first scrapes")
    alerts = json.loads(http_get(f"{base}/alerts"))["data"]["alerts"]
    assert [(a["labels"]["alertname"], a["state"]) for a in alerts] == []
