"""Cluster mode against real Citus (skipped, with the reason, where Citus is not installed)."""

from __future__ import annotations

import json
import os
import signal
import time

import psycopg
import pytest

from exapg.postgres.binaries import find_binaries
from exapg.postgres.conn import connect
from tests.conftest import build_stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not find_binaries().has_extension("citus"),
        reason="the citus extension is not installed for PostgreSQL 15 on this machine",
    ),
]

ROWS = 20_000
CHECKSUM = "SELECT count(*), sum(hashtext(id::text || payload)) FROM events"


@pytest.fixture(scope="module")
def cluster():
    stack = build_stack("cluster", start=False)
    result = stack.cli("up", "--mode", "cluster", "--workers", "2", "--standby", timeout=300)
    assert result.returncode == 0, result.stderr
    yield stack
    stack.destroy()


def placements_by_port(conn) -> dict[int, int]:
    rows = conn.execute(
        "SELECT nodeport, count(*) FROM citus_shards WHERE table_name = 'events'::regclass GROUP BY 1"
    ).fetchall()
    return {int(port): int(count) for port, count in rows}


def test_cluster_loads_a_distributed_table(cluster):
    with connect(cluster.coordinator) as conn:
        conn.execute("CREATE TABLE events (id bigint PRIMARY KEY, payload text)")
        conn.execute("CREATE TABLE kinds (kind int PRIMARY KEY, name text)")
    assert cluster.cli("distribute", "events", "--column", "id", "--shard-count", "8").returncode == 0
    assert cluster.cli("reference", "kinds").returncode == 0
    with connect(cluster.coordinator) as conn:
        conn.execute("INSERT INTO events SELECT g, md5(g::text) FROM generate_series(1, %s) g", (ROWS,))
        cluster.extra["checksum"] = conn.execute(CHECKSUM).fetchone()
        ports = placements_by_port(conn)
        kinds = conn.execute("SELECT count(*) FROM citus_shards WHERE table_name = 'kinds'::regclass").fetchone()
    assert cluster.extra["checksum"][0] == ROWS
    assert set(ports) == {cluster.settings.worker_port(1), cluster.settings.worker_port(2)}
    assert kinds[0] >= 2  # a reference table has a placement on every node
    status = {s["name"]: s for s in json.loads(cluster.cli("status", "--json").stdout)}
    assert status["worker1"]["healthy"] and "shards" in status["worker1"]["detail"]
    assert status["standby"]["healthy"]  # the coordinator's hot standby
    with connect(cluster.standby) as conn:
        deadline = time.monotonic() + 15
        while conn.execute("SELECT to_regclass('events')").fetchone()[0] is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_bad_table_and_column_names_are_refused(cluster):
    for args in (["distribute", "events; drop table x", "--column", "id"],
                 ["distribute", "events", "--column", "no such"],
                 ["distribute", "missing_table", "--column", "id"],
                 ["reference", "a.b.c"]):
        result = cluster.cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1


def test_scale_out_moves_shards_and_loses_nothing(cluster):
    result = cluster.cli("scale", "--workers", "3", timeout=600)
    assert result.returncode == 0, result.stderr
    with connect(cluster.coordinator) as conn:
        ports = placements_by_port(conn)
        assert ports.get(cluster.settings.worker_port(3), 0) > 0
        assert conn.execute(CHECKSUM).fetchone() == cluster.extra["checksum"]


def test_scale_in_drains_first_and_loses_nothing(cluster):
    result = cluster.cli("scale", "--workers", "2", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "drained" in result.stdout
    with connect(cluster.coordinator) as conn:
        nodes = conn.execute("SELECT nodeport FROM pg_dist_node WHERE groupid <> 0").fetchall()
        expected = sorted([cluster.settings.worker_port(1), cluster.settings.worker_port(2)])
        assert sorted(p for (p,) in nodes) == expected
        assert cluster.settings.worker_port(3) not in placements_by_port(conn)
        assert conn.execute(CHECKSUM).fetchone() == cluster.extra["checksum"]


def test_passwords_are_required_between_nodes(cluster):
    worker = cluster.runtime.dsn("worker1")
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        psycopg.connect(**{**worker.kwargs(), "password": "not-the-password"})
    with connect(worker) as conn:
        assert conn.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules").fetchall() == [("scram-sha-256",)]


def test_killed_worker_shows_down_and_queries_fail_clearly(cluster):
    server = cluster.server("worker2")
    os.kill(server.pidfile().pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while server.pidfile() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    status = {s["name"]: s for s in json.loads(cluster.cli("status", "--json").stdout)}
    assert status["worker2"]["state"] == "stopped" and not status["worker2"]["healthy"]
    assert cluster.cli("health").returncode == 1
    with connect(cluster.coordinator) as conn, pytest.raises(psycopg.Error, match="connection"):
        conn.execute("SELECT count(*) FROM events")
    assert cluster.cli("up").returncode == 0
    assert cluster.cli("health").returncode == 0
    with connect(cluster.coordinator) as conn:
        assert conn.execute(CHECKSUM).fetchone() == cluster.extra["checksum"]


def test_worker_self_registration_is_idempotent(cluster):
    """The container entry point, run against the local cluster: re-registering is a no-op."""
    import subprocess
    import sys

    env = {
        "COORDINATOR_HOST": "127.0.0.1", "COORDINATOR_PORT": str(cluster.settings.coordinator_port),
        "POSTGRES_DB": cluster.settings.postgres_db, "POSTGRES_USER": cluster.settings.postgres_user,
        "POSTGRES_PASSWORD_FILE": str(cluster.password_file), "WORKER_HOST": "127.0.0.1",
        "WORKER_PORT": str(cluster.settings.worker_port(1)), "PATH": os.environ["PATH"],
    }
    result = subprocess.run([sys.executable, "-m", "exapg.cluster.register", "--timeout", "10"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "already registered" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "exapg.cluster.register", "--timeout", "0"],
                         env={**env, "COORDINATOR_PORT": "1"}, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "could not register" in bad.stderr
