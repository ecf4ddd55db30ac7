"""The exporter as the local runtime supervises it, and its exposition rules."""

from __future__ import annotations

import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from exapg.exporter.config import ExporterConfig
from exapg.exporter.metrics import SPECS, Exposition
from exapg.exporter.service import exporter_program
from exapg.settings import Settings
from exapg.status import Role


def test_program_points_at_the_local_pair(tmp_path):
    settings = Settings.load(environ={"EXPORTER_PORT": "19188", "POSTGRES_DB": "exadb",
                                      "EXAPG_ENV_FILE": "/nonexistent"})
    program = exporter_program(settings=settings, password_file=tmp_path / "pw",
                               primary_port=5432, standby_ports=[5440, 5441], log_dir=tmp_path)
    assert program.name == "replication_exporter" and program.role == Role.EXPORTER
    assert list(program.command) == [sys.executable, "-m", "exapg.exporter"]
    assert program.health_url == "http://127.0.0.1:19188/health"
    env = program.environment
    assert "POSTGRES_PASSWORD" not in env  # the secret stays in its file
    config = ExporterConfig.from_env(env | {"POSTGRES_PASSWORD_FILE": "/dev/null"})
    assert config.primary.label == "127.0.0.1:5432"
    assert [s.label for s in config.standbys] == ["127.0.0.1:5440", "127.0.0.1:5441"]
    assert (config.port, config.listen_address, config.dbname) == (19188, "127.0.0.1", "exadb")
    assert env["POSTGRES_PASSWORD_FILE"] == str(Path(tmp_path / "pw"))


class _Fixed(Collector):
    def __init__(self, out: Exposition) -> None:
        self.out = out

    def collect(self):
        return self.out.families()


def test_unknown_values_and_repeated_label_sets_are_left_out():
    out = Exposition()
    labels = {"instance": "standby", "server": "db:5432"}
    out.add("pg_replication_lag_seconds", labels, None)
    sender = {"instance": "primary", "server": "db:5432", "application_name": "s",
              "client_addr": "10.0.0.2", "stage": "replay"}
    out.add("pg_replication_standby_lag_bytes", sender, 1.0)
    out.add("pg_replication_standby_lag_bytes", sender, 2.0)
    out.add("pg_wal_position_bytes", labels, 123)
    registry = CollectorRegistry()
    registry.register(_Fixed(out))
    text = generate_latest(registry).decode()
    assert "pg_replication_lag_seconds" not in text
    assert text.count("pg_replication_standby_lag_bytes{") == 1 and "} 1.0" in text
    assert 'pg_wal_position_bytes_total{instance="standby",server="db:5432"} 123.0' in text


def test_every_metric_is_documented():
    doc = (Path(__file__).parents[3] / "docs" / "exporter.md").read_text()
    for name, spec in SPECS.items():
        exposed = f"{name}_total" if spec.kind == "counter" else name
        assert f"`{exposed}`" in doc, exposed
