"""The local runtime's monitoring programs: commands, environment, rendered configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from exapg.monitoring import prometheus_config
from exapg.runtime.base import Program
from exapg.runtime.programs import postgres_exporter, prometheus
from exapg.settings import Settings
from exapg.stack import Stack
from exapg.status import Role
from tests.monitoring.promql import MONITORING


def settings(**env: str) -> Settings:
    return Settings.load(environ={"EXAPG_ENV_FILE": "/nonexistent/.env", "PROMETHEUS_PORT": "19090",
                                 "POSTGRES_EXPORTER_PORT": "19187", **env})


def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


def monitoring_stack(tmp_path: Path, **env: str) -> Stack:
    return Stack(settings(EXAPG_STATE_DIR=str(state_dir(tmp_path)), **env))


def describe(stack: Stack) -> list[Program]:
    return [p for p in (postgres_exporter.program(stack, 15432), prometheus.program(stack)) if p]


def programs(tmp_path: Path, **env: str) -> dict[str, Program]:
    stack = monitoring_stack(tmp_path, **env)
    prometheus.write_files(stack, {"replication_exporter": "127.0.0.1:19188"},
                           with_exporter=postgres_exporter.binary() is not None)
    return {p.name: p for p in describe(stack)}


def installed() -> None:
    if not prometheus.binary() or not postgres_exporter.binary():
        pytest.skip("prometheus / prometheus-postgres-exporter not installed")


def test_postgres_exporter_reads_the_password_from_a_file(tmp_path):
    installed()
    exporter = programs(tmp_path)["postgres_exporter"]
    assert exporter.role == Role.EXPORTER and exporter.port == 19187
    assert "--web.listen-address=127.0.0.1:19187" in exporter.command
    assert exporter.environment["DATA_SOURCE_URI"] == (
        "127.0.0.1:15432/exadb?sslmode=disable&citus.node_connection_timeout=2000")
    assert exporter.environment["DATA_SOURCE_USER"] == "postgres"
    assert exporter.environment["DATA_SOURCE_PASS_FILE"] == str(tmp_path / "state" / "run" / "postgres.password")
    assert Path(exporter.environment["PG_EXPORTER_EXTEND_QUERY_PATH"]).read_text() == (
        MONITORING / "postgres_exporter" / "queries.yaml").read_text()
    assert "DATA_SOURCE_NAME" not in exporter.environment


def test_prometheus_command_and_rendered_configuration(tmp_path):
    installed()
    prometheus = programs(tmp_path)["prometheus"]
    assert prometheus.role == Role.MONITORING and prometheus.port == 19090
    assert prometheus.health_url == "http://127.0.0.1:19090/-/ready"
    args = dict(a.split("=", 1) for a in prometheus.command[1:] if "=" in a)
    assert args["--web.listen-address"] == "127.0.0.1:19090"
    assert args["--storage.tsdb.retention.time"] == "200h"
    config = yaml.safe_load(Path(args["--config.file"]).read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["prometheus"]["static_configs"][0]["targets"] == ["127.0.0.1:19090"]
    assert jobs["postgres_exporter"]["static_configs"][0]["targets"] == ["127.0.0.1:19187"]
    assert jobs["replication_exporter"]["honor_labels"] is True
    rules_dir = Path(config["rule_files"][0]).parent
    assert sorted(p.name for p in rules_dir.glob("*.yml")) == sorted(
        p.name for p in (MONITORING / "prometheus" / "rules").glob("*.yml"))
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run([promtool, "check", "config", args["--config.file"]], capture_output=True,
                               text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr


def test_job_names_match_the_docker_configuration():
    docker = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    docker_jobs = {j["job_name"] for j in docker["scrape_configs"]} - {"docker-containers"}
    rendered = yaml.safe_load(prometheus_config.render_prometheus_config(
        prometheus_config.all_targets(settings(), {"replication_exporter": "127.0.0.1:1"}, True), None))
    assert {j["job_name"] for j in rendered["scrape_configs"]} == docker_jobs


def test_nothing_installed_gives_no_program(tmp_path, monkeypatch):
    monkeypatch.setattr(prometheus, "binary", lambda: None)
    monkeypatch.setattr(postgres_exporter, "binary", lambda: None)
    assert describe(monitoring_stack(tmp_path)) == []


def test_without_the_exporter_prometheus_does_not_scrape_it(tmp_path, monkeypatch):
    installed()
    monkeypatch.setattr(postgres_exporter, "binary", lambda: None)
    found = programs(tmp_path)
    assert list(found) == ["prometheus"]
    config_file = next(a.split("=", 1)[1] for a in found["prometheus"].command if a.startswith("--config.file="))
    jobs = {j["job_name"] for j in yaml.safe_load(Path(config_file).read_text())["scrape_configs"]}
    assert jobs == {"prometheus", "replication_exporter"}


def test_any_address_listen_is_scraped_on_loopback():
    assert prometheus_config.scrape_host("0.0.0.0") == "127.0.0.1"
    assert prometheus_config.scrape_host("10.0.0.7") == "10.0.0.7"


def test_describing_without_writing_gives_the_same_programs(tmp_path):
    installed()
    stack = monitoring_stack(tmp_path)
    described = describe(stack)
    assert not stack.conf_dir.exists()
    prometheus.write_files(stack, {"replication_exporter": "127.0.0.1:19188"}, with_exporter=True)
    assert described == describe(stack)
    assert (stack.conf_dir / "prometheus.yml").is_file()
