"""Cluster mode against real Citus (skipped, with the reason, where Citus is not installed)."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import psycopg
import pytest

from exapg.cluster.citus import citus_state
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


def api_cluster(stack) -> dict:
    """GET /api/cluster from the stack's own management backend, logged in as its admin."""
    base = f"http://127.0.0.1:{stack.settings.mgmt_backend_port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        login = client.post("/api/auth/login",
                            json={"username": "admin", "password": stack.runtime.secrets.admin_password})
        assert login.status_code == 200, login.text
        answer = client.get("/api/cluster", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def citus_series(stack) -> dict[tuple[str, str], float]:
    """exapg_citus_* samples from the stack's postgres_exporter: (metric, nodeport or '') -> value."""
    text = httpx.get(f"http://127.0.0.1:{stack.settings.postgres_exporter_port}/metrics", timeout=30).text
    samples: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("exapg_citus_"):
            name, value = line.rsplit(" ", 1)
            metric, _, labels = name.partition("{")
            port = next((part.split('"')[1] for part in labels.split(",") if part.startswith("nodeport=")), "")
            samples[(metric, port)] = float(value)
    return samples


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


def test_citus_state_is_shown_by_the_api_and_exported_as_metrics(cluster):
    """After the scale-out: every worker with its shards, and the finished rebalance, in the
    management API and in postgres_exporter's exapg_citus_* series."""
    workers = {cluster.settings.worker_port(i) for i in (1, 2, 3)}
    with connect(cluster.coordinator) as conn:
        state = citus_state(conn)
        ports = placements_by_port(conn)
    assert state is not None
    assert {n.port for n in state.nodes if n.role == "worker"} == workers
    assert all(n.active and n.reachable for n in state.nodes)
    assert state.rebalance is not None and state.rebalance.state == "finished"
    assert state.rebalance.tasks_done == state.rebalance.tasks_total > 0

    api = api_cluster(cluster)
    assert api["citus_error"] is None
    shown = {n["port"]: n for n in api["citus"]["nodes"]}
    assert set(shown) == workers | {cluster.settings.coordinator_port}
    assert shown[cluster.settings.worker_port(3)]["shards"] >= ports[cluster.settings.worker_port(3)]
    assert shown[cluster.settings.worker_port(3)]["bytes"] > 0
    assert api["citus"]["rebalance"]["job_id"] == state.rebalance.job_id

    series = citus_series(cluster)
    for port in workers:
        assert series[("exapg_citus_node_active", str(port))] == 1
        assert series[("exapg_citus_node_reachable", str(port))] == 1
        assert series[("exapg_citus_node_shards", str(port))] == shown[port]["shards"]
    assert series[("exapg_citus_rebalance_running", "")] == 0
    assert series[("exapg_citus_rebalance_tasks_done", "")] == state.rebalance.tasks_done


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
    down = str(cluster.settings.worker_port(2))
    assert citus_series(cluster)[("exapg_citus_node_reachable", down)] == 0
    shown = {str(n["port"]): n for n in api_cluster(cluster)["citus"]["nodes"]}
    assert shown[down]["reachable"] is False and "failed to connect" in shown[down]["error"]
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
