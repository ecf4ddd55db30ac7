"""Citus in containers on the real engine: the specification's `--scale worker=N` registers every
worker by itself, and `exapg scale --backend docker` drains on the way down and
rebalances on the way up, with a distributed table's rows and checksum unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.docker.engine import citus_in_image, docker, project, wait_for

pytestmark = pytest.mark.timeout(1200)
REPO = Path(__file__).resolve().parents[2]
FILES = ["docker-compose.yml", "docker-compose.prod.yml"]  # what the Docker backend uses by default


def exapg(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "EXAPG_ENV_FILE": "/nonexistent/.env", "EXAPG_BACKEND": "docker"}
    return subprocess.run([sys.executable, "-m", "exapg.cli.main", *args], env=full, capture_output=True,
                          text=True, timeout=timeout, check=False, cwd=REPO)


def active_workers(conn) -> list[str]:
    rows = conn.execute("SELECT nodename FROM pg_dist_node WHERE noderole = 'primary' AND groupid > 0 "
                        "AND isactive ORDER BY nodename").fetchall()
    return [r[0] for r in rows]


def fingerprint(conn) -> tuple[int, str]:
    row = conn.execute("SELECT count(*), md5(string_agg(id::text || note, ',' ORDER BY id)) FROM events").fetchone()
    return int(row[0]), str(row[1])


def test_workers_scale_with_citus_and_lose_no_row(tmp_path):
    if not citus_in_image():
        pytest.skip("exapg/postgres was built without Citus (exapg images build --citus-source DIR)")
    dirs = {"EXAPG_DATA_DIR": str(tmp_path / "data"), "EXAPG_CONFIG_DIR": str(tmp_path / "config"),
            "EXAPG_LOG_DIR": str(tmp_path / "logs")}
    with project(FILES, **dirs) as stack:
        from exapg.runtime.docker import prepare_production_dirs

        prepare_production_dirs(stack.env)
        env = {k: v for k, v in stack.env.items() if k not in ("PATH", "HOME")}
        stack.compose("up", "-d", "--scale", "worker=2", "coordinator", "worker1", "worker2", "worker")
        stack.wait_healthy("coordinator", "worker1", "worker2")
        with stack.connect() as conn:
            wait_for(lambda: len(active_workers(conn)) == 4, 180, "four workers registered by themselves")
            conn.execute("CREATE TABLE events (id bigint PRIMARY KEY, note text)")
        distributed = exapg(["distribute", "events", "--column", "id"], env)
        assert distributed.returncode == 0, distributed.stderr
        with stack.connect() as conn:
            conn.execute("INSERT INTO events SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
            before = fingerprint(conn)
            four = active_workers(conn)

        shrunk = exapg(["scale", "--workers", "3"], env)
        assert shrunk.returncode == 0, shrunk.stderr
        assert "drained 1 worker(s)" in shrunk.stdout
        with stack.connect() as conn:
            three = active_workers(conn)
            assert len(three) == 3 and set(three) < set(four)
            gone = (set(four) - set(three)).pop()
            left = conn.execute("SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
                                "WHERE n.nodename = %s", (gone,)).fetchone()
            assert left == (0,)
            assert fingerprint(conn) == before
        assert len(stack.compose("ps", "-q", "worker").stdout.split()) == 1

        grown = exapg(["scale", "--workers", "4"], env)
        assert grown.returncode == 0, grown.stderr
        assert "4 workers registered" in grown.stdout and "rebalance job" in grown.stdout, grown.stdout
        with stack.connect() as conn:
            assert len(active_workers(conn)) == 4
            shards = dict(conn.execute(
                "SELECT n.nodename, count(*) FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
                "WHERE n.groupid > 0 GROUP BY 1").fetchall())
            assert len(shards) == 4 and min(shards.values()) > 0, shards  # the new worker holds shards
            assert fingerprint(conn) == before

        worker_killed_mid_query(stack, env, before)
        drain_that_cannot_finish_keeps_the_worker(stack, env)


def worker_killed_mid_query(stack, env: dict[str, str], before: tuple[int, str]) -> None:
    """The query fails with a clear error, status says the worker is down, and the worker
    comes back with `exapg up` and re-registers; no row is lost."""
    import threading

    import psycopg

    failure: list[BaseException] = []

    def slow_query() -> None:
        try:
            with stack.connect() as conn:
                conn.execute("SELECT count(*) FROM (SELECT id, pg_sleep(0.01) FROM events) s")
        except psycopg.Error as exc:
            failure.append(exc)

    query = threading.Thread(target=slow_query)
    query.start()
    time.sleep(3)
    docker("kill", stack.container("worker1"))
    query.join(timeout=120)
    assert failure, "the query survived its worker being killed"
    message = str(failure[0])
    assert "worker1" in message or "remote node" in message or "connection" in message, message

    listed = json.loads(exapg(["status", "--json"], env, timeout=120).stdout)
    assert {s["name"]: s["state"] for s in listed}[f"{stack.name}_worker1"] == "stopped"
    assert exapg(["health"], env, timeout=120).returncode == 1
    back = exapg(["up", "--mode", "cluster", "--workers", "4"], env)
    assert back.returncode == 0, back.stderr
    stack.wait_healthy("worker1")
    with stack.connect() as conn:
        assert wait_for(lambda: fingerprint(conn) == before, 120, "queries across all workers again")


def drain_that_cannot_finish_keeps_the_worker(stack, env: dict[str, str]) -> None:
    """A table Citus cannot move online (no primary key or replica identity): scale-in
    refuses in one line, and the worker, its container and its placements stay."""
    with stack.connect() as conn:
        conn.execute("CREATE TABLE unmovable (id bigint, note text)")
        conn.execute("SELECT create_distributed_table('unmovable', 'id')")
        conn.execute("INSERT INTO unmovable SELECT g, 'x' FROM generate_series(1, 1000) g")
        workers_before = active_workers(conn)
    refused = exapg(["scale", "--workers", "3"], env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "it was kept" in refused.stderr, refused.stderr
    with stack.connect() as conn:
        assert active_workers(conn) == workers_before
        flags = conn.execute("SELECT bool_and(shouldhaveshards) FROM pg_dist_node WHERE groupid > 0").fetchone()
        assert flags == (True,)
        assert conn.execute("SELECT count(*) FROM unmovable").fetchone() == (1000,)
    assert len(stack.compose("ps", "-q", "worker").stdout.split()) == 2
