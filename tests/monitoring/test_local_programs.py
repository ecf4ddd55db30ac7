"""The local runtime's monitoring programs: commands, environment, rendered configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from exapg.monitoring import local
from exapg.settings import Settings
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


def programs(tmp_path: Path, **env: str) -> dict[str, local.Program]:
    found = local.monitoring_programs(
        settings=settings(**env), state_dir=state_dir(tmp_path), password_file=tmp_path / "pw",
        coordinator_port=15432, targets={"replication_exporter": "127.0.0.1:19188"})
    return {p.name: p for p in found}


def installed() -> None:
    if not local.prometheus_binary() or not local.postgres_exporter_binary():
        pytest.skip("prometheus / prometheus-postgres-exporter not installed")


def test_postgres_exporter_reads_the_password_from_a_file(tmp_path):
    installed()
    exporter = programs(tmp_path)["postgres_exporter"]
    assert exporter.role == Role.EXPORTER and exporter.port == 19187
    assert "--web.listen-address=127.0.0.1:19187" in exporter.command
    assert exporter.environment["DATA_SOURCE_URI"] == (
        "127.0.0.1:15432/exadb?sslmode=disable&citus.node_connection_timeout=2000")
    assert exporter.environment["DATA_SOURCE_USER"] == "postgres"
    assert exporter.environment["DATA_SOURCE_PASS_FILE"] == str(tmp_path / "pw")
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
    rendered = yaml.safe_load(local.render_prometheus_config(
        local.all_targets(settings(), {"replication_exporter": "127.0.0.1:1"}, True), None))
    assert {j["job_name"] for j in rendered["scrape_configs"]} == docker_jobs


def test_nothing_installed_gives_no_program(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "prometheus_binary", lambda: None)
    monkeypatch.setattr(local, "postgres_exporter_binary", lambda: None)
    assert local.monitoring_programs(settings=settings(), state_dir=tmp_path, password_file=tmp_path / "pw",
                                     coordinator_port=1, targets={}) == []


def test_without_the_exporter_prometheus_does_not_scrape_it(tmp_path, monkeypatch):
    installed()
    monkeypatch.setattr(local, "postgres_exporter_binary", lambda: None)
    found = programs(tmp_path)
    assert list(found) == ["prometheus"]
    config_file = next(a.split("=", 1)[1] for a in found["prometheus"].command if a.startswith("--config.file="))
    jobs = {j["job_name"] for j in yaml.safe_load(Path(config_file).read_text())["scrape_configs"]}
    assert jobs == {"prometheus", "replication_exporter"}


def test_any_address_listen_is_scraped_on_loopback():
    assert local.scrape_host("0.0.0.0") == "127.0.0.1"
    assert local.scrape_host("10.0.0.7") == "10.0.0.7"


def test_describing_without_writing_gives_the_same_programs(tmp_path):
    installed()
    state = state_dir(tmp_path)
    kwargs = {"settings": settings(), "state_dir": state, "password_file": tmp_path / "pw",
              "coordinator_port": 15432, "targets": {"replication_exporter": "127.0.0.1:19188"}}
    described = local.monitoring_programs(**kwargs, write_files=False)
    assert not (state / "conf").exists()
    assert described == local.monitoring_programs(**kwargs)
    assert (state / "conf" / "prometheus.yml").is_file()
