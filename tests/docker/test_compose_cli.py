"""`exapg compose` and the docker runtime, on a machine with or without a Docker engine."""

from __future__ import annotations

import pytest

from exapg.errors import InvalidParameterError
from exapg.runtime.docker import (
    DockerCompose,
    compose_environment,
    compose_files,
    compose_variables,
    container_status,
    engine_problem,
    needs_no_engine,
    pool_size,
    services_for,
)
from exapg.settings import Settings
from exapg.status import Role, ServiceState
from tests.docker.cli import run
from tests.docker.compose import DOCKER_DIR, SECRETS, compose_binary

NO_ENV_FILE = {"EXAPG_ENV_FILE": "/nonexistent/.env"}


def settings(**env: str) -> Settings:
    return Settings.load(environ={**NO_ENV_FILE, **env})


def test_profiles_are_the_seeds_combinations():
    assert compose_files("dev") == ["docker-compose.yml", "docker-compose.override.yml"]
    assert compose_files("prod") == ["docker-compose.yml", "docker-compose.prod.yml"]
    assert compose_files("full") == ["docker-compose.yml", "docker-compose.monitoring.yml", "docker-compose.mgmt.yml"]
    assert compose_files("prod", ["ha", "security", "ha"]) == [
        "docker-compose.yml", "docker-compose.prod.yml", "docker-compose.ha.yml", "docker-compose.security.yml"]
    for profile in ("dev", "prod", "full"):
        assert all((DOCKER_DIR / name).is_file() for name in compose_files(profile, ["ha", "security"]))


@pytest.mark.parametrize(("profile", "extras"), [("staging", []), ("prod", ["backup"])])
def test_unknown_profile_or_addition(profile, extras):
    with pytest.raises(InvalidParameterError):
        compose_files(profile, extras)


def test_argv_names_project_and_files():
    compose_binary()
    argv = DockerCompose(settings(COMPOSE_PROJECT_NAME="exapg_green"), "full", ("ha",)).argv(["up", "-d"])
    assert argv[argv.index("--project-name") + 1] == "exapg_green"
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "-f"]
    assert [f.rsplit("/", 1)[1] for f in files] == [
        "docker-compose.yml", "docker-compose.monitoring.yml", "docker-compose.mgmt.yml", "docker-compose.ha.yml"]
    assert argv[-2:] == ["up", "-d"]


def test_secrets_given_as_files_reach_compose(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    env = compose_environment(settings(POSTGRES_PASSWORD_FILE=str(secret), COMPOSE_PROJECT_NAME="blue"), base={})
    assert env["POSTGRES_PASSWORD"] == "from-a-file"
    assert env["COMPOSE_PROJECT_NAME"] == "blue"
    assert "API_SECRET_KEY" not in env


def test_production_directories_come_from_the_env_file_compose_reads(tmp_path, monkeypatch):
    """`exapg up` makes the directories Compose mounts: those of EXAPG_ENV_FILE (blue/green),
    the process environment winning as it does in Compose."""
    env_file = tmp_path / "blue.env"
    env_file.write_text("COMPOSE_PROJECT_NAME=exapg_blue\nEXAPG_DATA_DIR=/srv/blue/data\nEXAPG_LOG_DIR=/srv/blue/logs\n")
    monkeypatch.setenv("EXAPG_ENV_FILE", str(env_file))
    monkeypatch.setenv("EXAPG_LOG_DIR", "/srv/elsewhere/logs")
    monkeypatch.delenv("EXAPG_DATA_DIR", raising=False)
    variables = compose_variables(Settings.load())
    assert variables["EXAPG_DATA_DIR"] == "/srv/blue/data"
    assert variables["EXAPG_LOG_DIR"] == "/srv/elsewhere/logs"
    assert variables["COMPOSE_PROJECT_NAME"] == "exapg_blue"


def test_engine_free_subcommands():
    assert needs_no_engine(["config", "--services"])
    assert needs_no_engine(["--no-ansi", "config"])
    assert not needs_no_engine(["up", "-d"])
    assert not needs_no_engine([])


def test_config_renders_without_an_engine():
    compose_binary()
    outcome = run(["compose", "full", "--with", "ha", "config", "--services"], SECRETS)
    assert outcome.code == 0, outcome.output


def test_without_an_engine_up_exits_4_with_one_line(tmp_path):
    compose_binary()
    gone = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}  # whether or not one runs here
    assert engine_problem(gone) is not None
    outcome = run(["compose", "prod", "up", "-d"], {**SECRETS, **gone})
    assert outcome.code == 4
    assert "no Docker engine is reachable" in outcome.output and "\n" not in outcome.output.strip()


def test_bad_profile_exits_2():
    assert run(["compose", "staging", "up"], SECRETS).code == 2


def test_worker_pool_size():
    assert pool_size(2) == 0 and pool_size(5) == 3
    with pytest.raises(InvalidParameterError, match="worker1 and worker2"):
        pool_size(1)


def test_services_per_mode():
    defined = ["coordinator", "worker1", "worker2", "worker", "pgbouncer", "standby", "replication_exporter",
               "prometheus"]
    assert services_for("standalone", defined) == ["coordinator", "pgbouncer", "replication_exporter",
                                                   "prometheus"]
    assert services_for("ha", defined) == ["coordinator", "pgbouncer", "standby", "replication_exporter",
                                           "prometheus"]
    assert "worker" in services_for("cluster", defined) and "standby" not in services_for("cluster", defined)
    with pytest.raises(InvalidParameterError):
        services_for("galaxy", defined)


def test_status_line_from_docker_inspect():
    item = {"Name": "/exapg_coordinator", "Id": "abc",
            "Config": {"Labels": {"com.docker.compose.service": "coordinator"}},
            "State": {"Status": "running", "Pid": 42, "Health": {"Status": "starting"}}}
    line = container_status(item)
    assert (line.name, line.role, line.state, line.healthy, line.pid) == (
        "exapg_coordinator", Role.COORDINATOR, ServiceState.RUNNING, False, 42)
    item["State"]["Health"]["Status"] = "healthy"
    assert container_status(item).healthy
    worker = {"Name": "/exapg_worker_3", "Config": {"Labels": {"com.docker.compose.service": "worker"}},
              "State": {"Status": "exited"}}
    assert (container_status(worker).role, container_status(worker).state) == (Role.WORKER, ServiceState.STOPPED)
