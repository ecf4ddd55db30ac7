import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from exapg import credentials as secret_store
from exapg import state
from exapg.cluster.topology import Mode, Topology
from exapg.errors import ConfigurationError, InvalidParameterError
from exapg.proc import ServiceUser
from exapg.settings import Settings
from exapg.status import Role


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.load(environ={"EXAPG_ENV_FILE": "/none", "EXAPG_STATE_DIR": str(tmp_path), **env})


def test_modes(tmp_path: Path):
    s = settings(tmp_path, STANDBY_PORT="6000")
    assert [n.name for n in Topology.build(s, Mode.STANDALONE).nodes] == ["coordinator"]
    ha = Topology.build(s, Mode.HA)
    assert [n.role for n in ha.nodes] == [Role.COORDINATOR, Role.STANDBY]
    assert ha.standbys[0].primary == "coordinator" and ha.standbys[0].port == 6000
    cluster = Topology.build(s, Mode.CLUSTER, workers=3)
    assert [n.port for n in cluster.workers] == [5433, 5434, 5435]
    assert not cluster.standbys
    assert Topology.build(s, Mode.CLUSTER, workers=2, standby=True).standbys


def test_unknown_node_and_bad_worker_count(tmp_path: Path):
    s = settings(tmp_path)
    with pytest.raises(InvalidParameterError, match="no node named 'worker9'"):
        Topology.build(s, Mode.HA).node("worker9")
    with pytest.raises(InvalidParameterError):
        Topology.build(s, Mode.CLUSTER, workers=-1)


def me() -> ServiceUser:
    return ServiceUser("me", os.geteuid(), os.getegid(), str(Path.home()))


def test_state_round_trip_and_corruption(tmp_path: Path):
    path = tmp_path / "state.json"
    assert state.load(path) is None
    original = state.StackState.new("p", Mode.HA, 0, True)
    state.save(path, original, me())
    assert state.load(path) == original
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    path.write_text("{not json")
    with pytest.raises(ConfigurationError, match="corrupted"):
        state.load(path)
    path.write_text(json.dumps({"version": 1, "mode": "sideways", "project": "p", "workers": 0, "standby": 0}))
    with pytest.raises(ConfigurationError, match="corrupted"):
        state.load(path)


def test_secrets_generated_once_and_env_wins(tmp_path: Path):
    path = tmp_path / "secrets.json"
    first = secret_store.load_or_create(path, settings(tmp_path), me())
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert len(first.postgres_password) >= 24 and first.postgres_password != first.replication_password
    again = secret_store.load_or_create(path, settings(tmp_path), me())
    assert again == first
    given = secret_store.load_or_create(path, settings(tmp_path, POSTGRES_PASSWORD="Given-Pass-123"), me())
    assert given.postgres_password == "Given-Pass-123"
    assert given.replication_password == first.replication_password


def test_a_given_password_waits_for_up(tmp_path: Path):
    """Only `up` takes a changed POSTGRES_PASSWORD (it changes the role first); other
    commands keep using the stored one, which the servers still hold."""
    path = tmp_path / "secrets.json"
    first = secret_store.load_or_create(path, settings(tmp_path), me())
    changed = settings(tmp_path, POSTGRES_PASSWORD="Changed-Pass-456")
    assert secret_store.load_or_create(path, changed, me(), apply_given=False) == first
    chosen, old = secret_store.pending(path, changed)
    assert (chosen.postgres_password, old) == ("Changed-Pass-456", first.postgres_password)
    assert secret_store.read_secrets(path)["postgres_password"] == first.postgres_password
    assert secret_store.pending(path, settings(tmp_path))[1] is None


def test_connection_urls_escape_what_urls_reserve():
    from exapg.postgres.conn import Dsn

    dsn = Dsn("127.0.0.1", 5432, "exadb", "post@gres", "p@ss/w:rd%")
    assert dsn.url(hide_password=False) == "postgresql://post%40gres:p%40ss%2Fw%3Ard%25@127.0.0.1:5432/exadb"
    import psycopg.conninfo

    assert psycopg.conninfo.conninfo_to_dict(dsn.url(hide_password=False))["password"] == "p@ss/w:rd%"


def test_pgpass_escapes():
    s = secret_store.Secrets("a:b\\c", "r", "k", "adm")
    line = secret_store.pgpass(s, "postgres").splitlines()[0]
    assert line == "*:*:*:postgres:a\\:b\\\\c"


def test_the_primary_moves_and_the_names_stay(tmp_path: Path):
    s = settings(tmp_path, COORDINATOR_PORT="5500", STANDBY_PORT="5501")
    swapped = Topology.build(s, Mode.HA, primary="standby")
    assert [(n.name, n.role, n.port) for n in swapped.nodes] == [
        ("standby", Role.COORDINATOR, 5501), ("coordinator", Role.STANDBY, 5500)]
    assert swapped.coordinator.name == "standby"
    follower = swapped.standbys[0]
    assert follower.primary == "standby" and follower.slot == "exapg_coordinator"
    assert follower.datadir == tmp_path / "data" / "coordinator"
    assert Topology.build(s, Mode.HA).standbys[0].slot == "exapg_standby1"  # unchanged for existing stacks
    for mode in (Mode.STANDALONE, Mode.CLUSTER):
        with pytest.raises(InvalidParameterError, match="cannot be the primary"):
            Topology.build(s, mode, workers=1, standby=True, primary="standby")
    with pytest.raises(InvalidParameterError):
        Topology.build(s, Mode.HA, primary="worker1")


def test_a_state_file_without_primary_loads_with_the_coordinator_as_primary(tmp_path: Path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 1, "project": "p", "mode": "ha", "workers": 0, "standby": True}))
    assert state.load(path).primary == "coordinator"
    swapped = replace(state.StackState.new("p", Mode.HA, 0, True), primary="standby")
    state.save(path, swapped, me())
    assert state.load(path) == swapped
    assert json.loads(path.read_text())["version"] == 1
