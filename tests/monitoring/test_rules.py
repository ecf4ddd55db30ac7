"""Prometheus configuration and alert rules: promtool checks, unit tests, metric names."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.monitoring.promql import (
    MONITORING,
    PROMETHEUS_SYNTHETIC,
    RULES,
    all_expressions,
    has_job_matcher,
    metric_names,
    recorded_postgres_exporter_names,
    replication_exporter_names,
    rule_expressions,
    selectors,
)

PROMETHEUS_DIR = MONITORING / "prometheus"
REQUIRED_ALERTS = {
    "PostgreSQLDown", "ExporterDown", "ReplicationLagBytesHigh", "ReplicationLagSecondsHigh",
    "ReplicationHealthScoreLow", "StandbyNotStreaming", "ReplicationSlotAtRisk",
    "ConnectionsNearLimit", "WALDiskFilling", "MultiplePrimaries", "StandbyNotInRecovery",
    "PrimaryTimelineChanged", "PrimaryTimelineChangedPlanned",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if not binary:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return subprocess.run([binary, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True,
                          timeout=120, check=False)


def test_promtool_check_config():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_check_rules():
    result = promtool("check", "rules", *[str(p) for p in RULES])
    assert result.returncode == 0, result.stdout + result.stderr


RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))


def test_promtool_unit_tests_pass():
    result = promtool("test", "rules", *[f"tests/{p.name}" for p in RULE_TESTS])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it():
    tests = [test for path in RULE_TESTS for test in yaml.safe_load(path.read_text())["tests"]]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"] if not case["exp_alerts"]}
    alerts = set(rule_expressions())
    assert alerts <= fired, f"never shown firing: {sorted(alerts - fired)}"
    assert alerts <= quiet, f"never shown quiet: {sorted(alerts - quiet)}"


def test_the_issue_s_alerts_exist():
    assert set(rule_expressions()) >= REQUIRED_ALERTS


def test_every_alert_has_severity_and_summary():
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                # info: worth seeing, not worth waking anyone (a planned switchover)
                assert rule["labels"]["severity"] in ("info", "warning", "critical"), rule["alert"]
                assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


@pytest.mark.parametrize(("expr", "expected"), [
    ('pg_up{job="x"} == 0', {"pg_up"}),
    ("sum by (datname) (rate(pg_stat_database_xact_commit[5m]))", {"pg_stat_database_xact_commit"}),
    ("a / on (server) b > 2 * c", {"a", "b", "c"}),
    ('count(ALERTS{alertstate="firing"}) or vector(0)', {"ALERTS"}),
    ("time() - pg_wal_receiver_last_msg_receipt_timestamp_seconds",
     {"pg_wal_receiver_last_msg_receipt_timestamp_seconds"}),
])
def test_metric_name_extraction(expr, expected):
    assert metric_names(expr) == expected


def test_every_expression_names_only_served_metrics():
    served = replication_exporter_names() | recorded_postgres_exporter_names() | PROMETHEUS_SYNTHETIC
    unknown = {where: sorted(metric_names(expr) - served) for where, expr in all_expressions().items()}
    assert not {k: v for k, v in unknown.items() if v}


@pytest.mark.parametrize(("expr", "name", "expected"), [
    ("pg_up == 0", "pg_up", [""]),
    ('pg_up{job="replication_exporter"} == 0', "pg_up", ['{job="replication_exporter"}']),
    ('sum by (server) (pg_up{instance="standby"}) and on (job) pg_up', "pg_up", ['{instance="standby"}', ""]),
    ("pg_upper + pg_up_x", "pg_up", []),
    ('count(pg_replication_slots_active{server="a", job=~"postgres_exporter"})', "pg_replication_slots_active",
     ['{server="a", job=~"postgres_exporter"}']),
])
def test_selector_extraction(expr, name, expected):
    assert selectors(expr, name) == expected


@pytest.mark.parametrize(("matchers", "expected"), [
    ("", False), ('{instance="standby"}', False), ('{job="a"}', True), ('{server="x",job=~"a|b"}', True),
    ('{job!="a"}', False), ('{cronjob="a"}', False),
])
def test_job_matcher(matchers, expected):
    assert has_job_matcher(matchers) is expected


def shared_names() -> set[str]:
    return replication_exporter_names() & recorded_postgres_exporter_names()


def test_the_exporters_share_metric_names():
    """postgres_exporter 0.11 serves pg_up (no server label) and, per slot,
    pg_replication_slots_active{slot_name} (a 0/1 flag), where the replication exporter
    serves pg_up per server and pg_replication_slots_active as a count of slots."""
    assert shared_names() >= {"pg_up", "pg_replication_slots_active"}


def test_names_both_exporters_serve_are_read_with_a_job_matcher():
    """Without one, a panel or rule adds up two different series under one name."""
    unfiltered = {
        where: sorted(name for name in shared_names() & metric_names(expr)
                      if not all(has_job_matcher(m) for m in selectors(expr, name)))
        for where, expr in all_expressions().items()
    }
    assert not {where: names for where, names in unfiltered.items() if names}


def test_docker_prometheus_config_scrapes_our_services():
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["postgres_exporter"]["static_configs"][0]["targets"] == ["postgres_exporter:9187"]
    assert jobs["replication_exporter"]["static_configs"][0]["targets"] == ["replication_exporter:9188"]
    assert jobs["replication_exporter"]["honor_labels"] is True
    # No container discovery: it would need the Docker socket (root on the host).
    assert "docker-containers" not in jobs
    assert not any("docker_sd_configs" in job for job in jobs.values())
    assert config["rule_files"] == ["rules/*.yml"]
    assert config["global"]["scrape_interval"] == "15s"
