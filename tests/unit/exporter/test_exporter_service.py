"""The exporter as the local runtime supervises it, and its exposition rules."""

from __future__ import annotations

import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from exapg.cluster.topology import Mode, Topology
from exapg.exporter.environment import ExporterConfig
from exapg.exporter.metrics import SPECS, Exposition
from exapg.runtime.programs import replication_exporter
from exapg.settings import Settings
from exapg.stack import Stack
from exapg.status import Role


def test_program_points_at_the_local_pair(tmp_path):
    settings = Settings.load(environ={"EXPORTER_PORT": "19188", "POSTGRES_DB": "exadb",
                                      "EXAPG_ENV_FILE": "/nonexistent", "EXAPG_STATE_DIR": str(tmp_path),
                                      "COORDINATOR_PORT": "5432", "STANDBY_PORT": "5440"})
    stack = Stack(settings)
    program = replication_exporter.program(stack, Topology.build(settings, Mode.HA))
    assert program.name == "replication_exporter" and program.role == Role.EXPORTER
    assert list(program.command) == [sys.executable, "-m", "exapg.exporter"]
    assert program.health_url == "http://127.0.0.1:19188/health"
    env = program.environment
    assert "POSTGRES_PASSWORD" not in env  # the secret stays in its file
    config = ExporterConfig.from_env(env | {"POSTGRES_PASSWORD_FILE": "/dev/null"})
    assert config.primary.label == "coordinator"  # the node's name, as status and alerts name it
    assert [s.label for s in config.standbys] == ["standby"]
    assert (config.primary.port, config.standbys[0].port) == (5432, 5440)
    assert (config.port, config.listen_address, config.dbname) == (19188, "127.0.0.1", "exadb")
    assert env["POSTGRES_PASSWORD_FILE"] == str(stack.password_file)


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
