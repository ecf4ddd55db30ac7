from pathlib import Path

import pytest

from exapg.errors import ConfigurationError, ExitCode
from exapg.settings import Settings, parse_size

NO_FILE = {"EXAPG_ENV_FILE": "/nonexistent/.env"}


def load(**env: str) -> Settings:
    return Settings.load(environ={**NO_FILE, **env})


def test_defaults_are_the_seeds():
    s = load()
    assert (s.compose_project_name, s.postgres_db, s.postgres_user) == ("exapg", "exadb", "postgres")
    assert s.named_ports()["COORDINATOR_PORT"] == 5432
    assert s.worker_port(1) == 5433 and s.worker_port(3) == 5435
    assert (s.pgbouncer_port, s.prometheus_port, s.grafana_port) == (6432, 9090, 3000)
    assert (s.postgres_exporter_port, s.exporter_port) == (9187, 9188)
    assert (s.mgmt_backend_port, s.mgmt_frontend_port) == (8000, 3001)
    assert (s.pool_mode, s.max_client_conn, s.default_pool_size) == ("transaction", 100, 20)
    assert s.postgres_password is None  # generated per stack in local mode, never defaulted
    assert s.huge_pages == "try"


def test_environment_overrides_and_worker_ports():
    s = load(COORDINATOR_PORT="6000", WORKER2_PORT="7002", POSTGRES_DB="sales")
    assert s.coordinator_port == 6000 and s.postgres_db == "sales"
    assert s.worker_port(2) == 7002 and s.worker_port(1) == 5433


def test_every_invalid_variable_is_reported_at_once():
    with pytest.raises(ConfigurationError) as info:
        load(COORDINATOR_PORT="70000", PGBOUNCER_PORT="abc", POOL_MODE="bogus", WORKER1_PORT="0",
             EXAPG_HUGE_PAGES="always")
    problems = info.value.problems
    assert info.value.exit_code == ExitCode.CONFIGURATION
    for name in ("COORDINATOR_PORT", "PGBOUNCER_PORT", "POOL_MODE", "WORKER1_PORT", "EXAPG_HUGE_PAGES"):
        assert any(p.startswith(name + ":") for p in problems), problems


def test_secret_values_never_echoed_in_errors():
    with pytest.raises(ConfigurationError) as info:
        load(POSTGRES_USER="bad name!", POSTGRES_PASSWORD="x" * 3)
    assert "bad name" in str(info.value)  # the offending user name is shown ...
    assert "xxx" not in str(info.value)  # ... a secret never is


def test_dotenv_file_is_read_and_environment_wins(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_DB=fromfile\nPGBOUNCER_PORT=7777\n")
    s = Settings.load(environ={"EXAPG_ENV_FILE": str(env_file), "PGBOUNCER_PORT": "8888"})
    assert s.postgres_db == "fromfile" and s.pgbouncer_port == 8888


def test_password_file_variables(tmp_path: Path):
    secret = tmp_path / "pw"
    secret.write_text("from-a-docker-secret\n")
    assert load(POSTGRES_PASSWORD_FILE=str(secret)).postgres_password.get_secret_value() == (
        "from-a-docker-secret"
    )
    with pytest.raises(ConfigurationError, match="POSTGRES_PASSWORD_FILE: cannot read"):
        load(POSTGRES_PASSWORD_FILE=str(tmp_path / "missing"))


def test_state_dir_per_project(tmp_path: Path):
    assert load(COMPOSE_PROJECT_NAME="blue").state_dir.name == "blue"
    assert load(EXAPG_STATE_DIR=str(tmp_path)).state_dir == tmp_path


@pytest.mark.parametrize(("text", "expected"), [("4GB", 4 << 30), ("512MiB", 512 << 20), ("1g", 1 << 30), ("100", 100)])
def test_parse_size(text: str, expected: int):
    assert parse_size(text) == expected


def test_bad_size_and_project_name():
    with pytest.raises(ConfigurationError) as info:
        load(EXAPG_MEMORY_LIMIT="lots", COMPOSE_PROJECT_NAME="Has Spaces")
    joined = " ".join(info.value.problems)
    assert "EXAPG_MEMORY_LIMIT" in joined and "COMPOSE_PROJECT_NAME" in joined


def test_to_environment_round_trips_without_secrets(tmp_path: Path):
    s = load(COORDINATOR_PORT="6000", WORKER3_PORT="7003", POSTGRES_PASSWORD="Very-Secret-123",
             EXAPG_MEMORY_LIMIT="2GB", EXAPG_STATE_DIR=str(tmp_path))
    env = s.to_environment()
    assert "POSTGRES_PASSWORD" not in env and "Very-Secret-123" not in env.values()
    again = Settings.load(environ=env)
    assert again.model_dump(exclude={"postgres_password"}) == s.model_dump(exclude={"postgres_password"})
