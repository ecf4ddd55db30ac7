"""Cluster mode against real Citus (skipped, with the reason, where Citus is not installed)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from exapg.cluster.citus import citus_state
from exapg.postgres.binaries import find_binaries
from exapg.postgres.conn import connect
from tests.conftest import build_stack
from tests.docker.image_tree import worker_python_tree

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not find_binaries().has_extension("citus"),
        reason="the citus extension is not installed for PostgreSQL 15 on this machine",
    ),
]

ROWS = 20_000
WORKER_SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "postgres" / "exapg-worker.sh"

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
                            json={"username": "admin", "password": stack.runtime.stack.secrets.admin_password})
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


def test_docker_mode_finds_the_workers_from_the_coordinator(cluster):
    """The management backend as the Docker image runs it (only DATABASE_URL): the workers
    come from pg_dist_node, the standby from pg_stat_replication."""
    from fastapi.testclient import TestClient

    from exapg.api.app import create_app
    from exapg.settings import Settings

    s = cluster.settings
    env = {"EXAPG_ENV_FILE": "/nonexistent/.env", "POSTGRES_PASSWORD": cluster.password,
           "DATABASE_URL": f"postgresql://{s.postgres_user}@127.0.0.1:{s.coordinator_port}/{s.postgres_db}",
           "POSTGRES_DB": s.postgres_db, "API_SECRET_KEY": "k" * 48, "EXAPG_PROMETHEUS_URL": "http://127.0.0.1:9",
           "EXAPG_STANDBY_NODE_PORT": str(s.standby_port)}
    with TestClient(create_app(Settings.load(environ=env), environ=env)) as client:
        login = client.post("/api/auth/login",
                            json={"username": "admin", "password": cluster.runtime.stack.secrets.admin_password})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        nodes = client.get("/api/cluster", headers=headers).json()["nodes"]
    shown = {(n["role"], n["port"]): n for n in nodes}
    workers = {("worker", s.worker_port(i)) for i in (1, 2, 3)}
    assert set(shown) == {("coordinator", s.coordinator_port), ("standby", s.standby_port)} | workers
    assert all(n["healthy"] for n in nodes), [n for n in nodes if not n["healthy"]]


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
    worker = cluster.runtime.stack.dsn("worker1")
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


def worker_script(cluster, tmp_path, command: str, port: int, **env: str) -> subprocess.CompletedProcess[str]:
    """The worker image's exapg-worker, run as in the image: Debian's python3 and psycopg, and
    only the ExaPG files the Dockerfile copies to /opt/exapg."""
    tree = tmp_path / "opt-exapg"
    if not tree.exists():
        worker_python_tree(tree)
    full = {
        "PATH": "/usr/bin:/bin", "EXAPG_PYTHON": "/usr/bin/python3", "EXAPG_PYTHONPATH": str(tree),
        "COORDINATOR_HOST": "127.0.0.1", "COORDINATOR_PORT": str(cluster.settings.coordinator_port),
        "POSTGRES_DB": cluster.settings.postgres_db, "POSTGRES_USER": cluster.settings.postgres_user,
        "POSTGRES_PASSWORD_FILE": str(cluster.password_file),
        "CITUS_NODE_NAME": "127.0.0.1", "CITUS_NODE_PORT": str(port), **env,
    }
    return subprocess.run(["bash", str(WORKER_SCRIPT), command], env=full, capture_output=True, text=True,
                          timeout=600, check=False)


def test_the_worker_image_registration_is_idempotent(cluster, tmp_path):
    """exapg-worker register, as the container runs it: a registered node is left alone."""
    port = cluster.settings.worker_port(1)
    result = worker_script(cluster, tmp_path, "register", port)
    assert result.returncode == 0, result.stderr
    assert "already registered" in result.stderr
    status = worker_script(cluster, tmp_path, "status", port)
    assert status.returncode == 0, status.stderr
    row = json.loads(status.stdout)
    assert isinstance(row.pop("nodeid"), int)
    assert row == {"node": f"127.0.0.1:{port}", "active": True, "should_have_shards": True}
    bad = worker_script(cluster, tmp_path, "register", port, COORDINATOR_PORT="1", EXAPG_REGISTER_TIMEOUT="0")
    assert bad.returncode == 1 and "could not register 127.0.0.1" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_failed_drain_keeps_the_worker_and_a_retry_finishes(cluster, tmp_path):
    """Scale out without rebalancing, rebalance, then scale in while a table cannot move
    (no replica identity for Citus's logical replication): refused, worker3 kept and still
    known to status; once the table can move, the worker image's drain removes it."""
    out = cluster.cli("scale", "--workers", "3", "--no-rebalance", timeout=600)
    assert out.returncode == 0, out.stderr
    third = cluster.settings.worker_port(3)
    with connect(cluster.coordinator) as conn:
        assert third not in placements_by_port(conn), "--no-rebalance moved shards"
    assert cluster.cli("rebalance", timeout=600).returncode == 0
    with connect(cluster.coordinator) as conn:
        assert placements_by_port(conn).get(third, 0) > 0
        conn.execute("CREATE TABLE stuck (id bigint, note text)")  # no key: no replica identity
        conn.execute("SELECT create_distributed_table('stuck', 'id', shard_count => 6)")
        conn.execute("INSERT INTO stuck SELECT g, 'n' || g FROM generate_series(1, 3000) g")
        stuck = conn.execute("SELECT count(*), sum(hashtext(note)) FROM stuck").fetchone()
    refused = cluster.cli("scale", "--workers", "2", timeout=600)
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1 and "replica identity" in refused.stderr.lower()
    status = {s["name"]: s for s in json.loads(cluster.cli("status", "--json").stdout)}
    assert status["worker3"]["state"] == "running", "a worker that could not be drained must stay known"
    with connect(cluster.coordinator) as conn:
        assert conn.execute("SELECT count(*), sum(hashtext(note)) FROM stuck").fetchone() == stuck
        assert conn.execute(CHECKSUM).fetchone() == cluster.extra["checksum"]
        conn.execute("ALTER TABLE stuck REPLICA IDENTITY FULL")
    drained = worker_script(cluster, tmp_path, "drain", third)
    assert drained.returncode == 0, drained.stderr
    with connect(cluster.coordinator) as conn:
        assert third not in placements_by_port(conn)
        assert not conn.execute("SELECT 1 FROM pg_dist_node WHERE nodeport = %s", (third,)).fetchone()
        assert conn.execute("SELECT count(*), sum(hashtext(note)) FROM stuck").fetchone() == stuck
        assert conn.execute(CHECKSUM).fetchone() == cluster.extra["checksum"]
        conn.execute("DROP TABLE stuck")
    finished = cluster.cli("scale", "--workers", "2", timeout=600)
    assert finished.returncode == 0, finished.stderr
    names = {s["name"] for s in json.loads(cluster.cli("status", "--json").stdout)}
    assert "worker3" not in names and cluster.cli("health").returncode == 0


def test_columnar_command_converts_a_table(cluster):
    with connect(cluster.coordinator) as conn:
        conn.execute("CREATE TABLE facts AS SELECT g AS id, g % 7 AS kind FROM generate_series(1, 5000) g")
    result = cluster.cli("columnar", "facts")
    assert result.returncode == 0, result.stderr
    with connect(cluster.coordinator) as conn:
        am = conn.execute("SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
                          "WHERE c.oid = 'facts'::regclass").fetchone()[0]
        assert am == "columnar"
        expected = (5000, sum(g % 7 for g in range(1, 5001)))
        assert conn.execute("SELECT count(*), sum(kind) FROM facts").fetchone() == expected
        conn.execute("DROP TABLE facts")
    assert cluster.cli("columnar", "no_such_table").returncode == 2


@pytest.mark.skipif(importlib.util.find_spec("duckdb_extension_tpch") is None,
                    reason="the tpch extra is not installed (pip install '.[tpch]')")
def test_tpch_in_cluster_mode_distributes_and_answers_right(cluster):
    """lineitem and orders distributed and co-located on the order key, the other tables
    reference tables; the queries Citus can plan give the reference answers."""
    loaded = cluster.cli("sample", "tpch", "--sf", "0.01", "--columnar", "--json", timeout=600)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["distributed"] is True
    with connect(cluster.coordinator) as conn:
        kinds = dict(conn.execute(
            "SELECT logicalrelid::regclass::text, partmethod::text FROM pg_dist_partition "
            "WHERE logicalrelid::regclass::text LIKE 'tpch.%'").fetchall())
        groups = dict(conn.execute(
            "SELECT logicalrelid::regclass::text, colocationid FROM pg_dist_partition "
            "WHERE logicalrelid::regclass::text LIKE 'tpch.%'").fetchall())
        access = dict(conn.execute(
            "SELECT c.relname, a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
            "WHERE c.relnamespace = 'tpch'::regnamespace AND c.relkind = 'r'").fetchall())
    assert {t: kinds[f"tpch.{t}"] for t in ("lineitem", "orders")} == dict.fromkeys(("lineitem", "orders"), "h")
    dimensions = ("region", "nation", "supplier", "customer", "part", "partsupp")
    assert {t: kinds[f"tpch.{t}"] for t in dimensions} == dict.fromkeys(dimensions, "n")
    assert groups["tpch.lineitem"] == groups["tpch.orders"]
    assert access["lineitem"] == "columnar" and access["orders"] == "columnar" and access["part"] == "heap"
    bench = cluster.cli("bench", "tpch", "--repeat", "1", "--json", timeout=600)
    assert bench.returncode == 0, bench.stdout[-2000:] + bench.stderr
    report = json.loads(bench.stdout)
    statuses = {r["query"]: r["status"] for r in report["results"]}
    unsupported = {q for q, status in statuses.items() if status == "unsupported"}
    assert set(statuses.values()) <= {"ok", "unsupported"} and len(statuses) == 22
    assert unsupported == {17, 20, 22}, f"Citus could not plan {sorted(unsupported)}"  # docs/tpch.md
    assert all(r["detail"] for r in report["results"] if r["status"] == "unsupported")
    assert report["passed"] and report["geometric_mean"] > 0
