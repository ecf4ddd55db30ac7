"""Exporter settings from the specification's variables."""

from __future__ import annotations

import pytest

from exapg.errors import ConfigurationError, ExitCode
from exapg.exporter.environment import ExporterConfig, parse_address


def test_seed_variables():
    config = ExporterConfig.from_env({
        "PRIMARY_HOST": "postgres-primary-lab", "PRIMARY_PORT": "5432",
        "STANDBY_HOST": "postgres-standby-lab", "STANDBY_PORT": "5433",
        "POSTGRES_DB": "testdb", "POSTGRES_USER": "monitor", "POSTGRES_PASSWORD": "pw",
        "EXPORTER_PORT": "9188",
    })
    assert config.primary.label == "postgres-primary-lab:5432"
    assert [s.label for s in config.standbys] == ["postgres-standby-lab:5433"]
    assert (config.dbname, config.user, config.password, config.port) == ("testdb", "monitor", "pw", 9188)
    assert config.listen_address == "0.0.0.0"


def test_defaults_without_a_standby():
    config = ExporterConfig.from_env({})
    assert config.primary.label == "localhost:5432"
    assert config.standbys == ()
    assert config.password is None  # no default password, ever
    assert config.statement_timeout_ms / 1000 < config.scrape_timeout < 1.0


def test_standby_hosts_list_wins_over_single_standby():
    config = ExporterConfig.from_env({
        "STANDBY_HOST": "ignored", "STANDBY_HOSTS": "s1:5433, s2 ,[fd00::2]:5434",
    })
    assert [s.label for s in config.standbys] == ["s1:5433", "s2:5432", "[fd00::2]:5434"]
    assert all(s.role == "standby" for s in config.standbys)


def test_empty_standby_host_means_no_standby():
    """How docker-compose.monitoring.yml hides the image's default from the specification STANDBY_HOST."""
    assert ExporterConfig.from_env({"STANDBY_HOST": "", "STANDBY_PORT": "5432"}).standbys == ()


def test_standby_hosts_wins_over_an_empty_or_default_standby_host():
    """docker-compose.ha.yml's STANDBY_HOSTS with monitoring.yml's empty STANDBY_HOST, or
    with the image's default: the same standby either way."""
    for single in ("", "postgres-standby-lab"):
        config = ExporterConfig.from_env({"STANDBY_HOST": single, "STANDBY_HOSTS": "standby:5432"})
        assert [s.label for s in config.standbys] == ["standby:5432"]


def test_password_file_wins(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    config = ExporterConfig.from_env({"POSTGRES_PASSWORD": "plain",
                                      "POSTGRES_PASSWORD_FILE": str(secret)})
    assert config.password == "from-file"


def test_every_fatal_problem_reported_at_once(tmp_path):
    with pytest.raises(ConfigurationError) as caught:
        ExporterConfig.from_env({
            "EXPORTER_PORT": "http", "POSTGRES_SSLMODE": "maybe",
            "POSTGRES_PASSWORD_FILE": str(tmp_path / "missing"), "EXPORTER_HEARTBEAT": "perhaps",
        })
    problems = caught.value.problems
    assert caught.value.exit_code == ExitCode.CONFIGURATION
    assert [p.split(":")[0] for p in problems] == [
        "POSTGRES_PASSWORD_FILE", "POSTGRES_SSLMODE", "EXPORTER_PORT", "EXPORTER_HEARTBEAT"]


def test_statement_timeout_must_fire_before_the_scrape_deadline():
    with pytest.raises(ConfigurationError, match="EXPORTER_STATEMENT_TIMEOUT_MS must be below"):
        ExporterConfig.from_env({"EXPORTER_STATEMENT_TIMEOUT_MS": "2000"})


def test_bad_database_address_is_not_fatal():
    config = ExporterConfig.from_env({"PRIMARY_PORT": "garbage", "STANDBY_HOSTS": "db:99999"})
    assert config.primary.problem and "garbage" in config.primary.problem
    assert config.primary.label == "localhost:garbage"
    assert len(config.address_problems()) == 2


@pytest.mark.parametrize(("text", "host", "port"), [
    ("db", "db", 5432),
    ("db:6000", "db", 6000),
    ("10.0.0.1:5433", "10.0.0.1", 5433),
    ("[::1]:5440", "::1", 5440),
    ("[::1]", "::1", 5432),
    ("fd00::7", "fd00::7", 5432),
])
def test_parse_address(text, host, port):
    address = parse_address("standby", text)
    assert (address.host, address.port, address.problem) == (host, port, None)


def test_configured_names_replace_host_port_in_the_server_label():
    config = ExporterConfig.from_env({
        "PRIMARY_HOST": "10.0.0.1", "PRIMARY_NAME": "pg-a",
        "STANDBY_HOSTS": "pg-b=10.0.0.2:5432,10.0.0.3",
    })
    assert config.primary.label == "pg-a" and config.primary.host == "10.0.0.1"
    assert [(s.label, s.host, s.port) for s in config.standbys] == [
        ("pg-b", "10.0.0.2", 5432), ("10.0.0.3:5432", "10.0.0.3", 5432)]
