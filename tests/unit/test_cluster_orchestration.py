"""Cluster orchestration decisions that need no database: names, node retirement, the
Docker worker pool, the worker image's settings. They run whether Citus is installed or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from exapg.cluster import citus, register
from exapg.cluster.topology import Mode, Topology
from exapg.errors import ExaPGError, InvalidParameterError
from exapg.runtime import docker, scaling
from exapg.settings import Settings


def settings(tmp_path: Path) -> Settings:
    return Settings.load(environ={"EXAPG_STATE_DIR": str(tmp_path / "stack"), "EXAPG_ENV_FILE": "/nonexistent"})


@pytest.mark.parametrize("name", ["events", "public.events", "_t1", "Events$2"])
def test_table_names_that_are_accepted(name):
    assert citus.table_identifier(name) is not None


@pytest.mark.parametrize("name", ["", "a.b.c", "events; drop table x", "1events", "ev ents", "a." , "x" * 64])
def test_table_names_that_are_refused(name):
    with pytest.raises(InvalidParameterError, match="invalid table name"):
        citus.table_identifier(name)


@pytest.mark.parametrize("name", ["id", "o_orderkey"])
def test_column_names_that_are_accepted(name):
    assert citus.column_name(name) == name


@pytest.mark.parametrize("name", ["no such", "id;", "", '"id"'])
def test_column_names_that_are_refused(name):
    with pytest.raises(InvalidParameterError, match="invalid column name"):
        citus.column_name(name)


def test_scale_in_retires_the_highest_workers_last_first(tmp_path):
    s = settings(tmp_path)
    before = Topology.build(s, Mode.CLUSTER, 4, False)
    after = Topology.build(s, Mode.CLUSTER, 2, False)
    assert [n.name for n in scaling.retiring(before, after)] == ["worker4", "worker3"]


def test_scale_out_and_first_up_retire_nothing(tmp_path):
    s = settings(tmp_path)
    grown = Topology.build(s, Mode.CLUSTER, 3, True)
    assert scaling.retiring(Topology.build(s, Mode.CLUSTER, 2, True), grown) == []
    assert scaling.retiring(None, grown) == []


def test_leaving_ha_retires_the_standby(tmp_path):
    s = settings(tmp_path)
    standalone = Topology.build(s, Mode.STANDALONE, 0, False)
    retired = scaling.retiring(Topology.build(s, Mode.HA, 0, True), standalone)
    assert [(n.name, n.is_standby) for n in retired] == [("standby", True)]


def test_docker_pool_keeps_the_seeds_fixed_workers():
    assert docker.pool_size(2) == 0 and docker.pool_size(5) == 3
    with pytest.raises(InvalidParameterError, match="at least 2"):
        docker.pool_size(1)
    defined = ["coordinator", "worker1", "worker2", "worker", "pgbouncer"]
    assert docker.services_for("cluster", defined)[:3] == ["coordinator", "worker1", "worker2"]
    with pytest.raises(InvalidParameterError, match="unknown mode"):
        docker.services_for("sideways", defined)


def test_the_worker_image_settings(monkeypatch, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret-from-a-file\n")
    monkeypatch.setenv("POSTGRES_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("COORDINATOR_HOST", "coordinator")
    monkeypatch.setenv("CITUS_NODE_NAME", "worker7")
    monkeypatch.delenv("CITUS_NODE_PORT", raising=False)
    assert register.worker_address() == ("worker7", 5432)
    dsn = register.coordinator_dsn()
    assert (dsn.host, dsn.port, dsn.password) == ("coordinator", 5432, "s3cret-from-a-file")
    monkeypatch.setenv("COORDINATOR_PORT", "54x32")
    with pytest.raises(InvalidParameterError, match="COORDINATOR_PORT must be a port number"):
        register.coordinator_dsn()
    monkeypatch.delenv("POSTGRES_PASSWORD_FILE")
    monkeypatch.delenv("POSTGRES_PASSWORD", raising=False)
    monkeypatch.setenv("COORDINATOR_PORT", "5432")
    with pytest.raises(ExaPGError, match="POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required"):
        register.coordinator_dsn()


def test_the_worker_image_exit_codes(monkeypatch, capsys):
    monkeypatch.setenv("POSTGRES_PASSWORD", "x")
    monkeypatch.setenv("CITUS_NODE_PORT", "not-a-port")
    assert register.main(["register", "--timeout", "0"]) == 2
    assert "CITUS_NODE_PORT must be a port number" in capsys.readouterr().err
