"""Changes of mode on a stack with data, through the real `exapg up --mode`: each either works
with every row kept, or is refused up front (exit 2, one line) with nothing changed.

Each test states the mode it starts from and brings its module's stack there first, so the
tests also pass alone; in file order each starts where the previous one left off, which keeps
the file to a few stacks. Cluster pairs skip where Citus is not installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from exapg.cluster.citus import citus_state
from exapg.postgres.binaries import find_binaries
from exapg.postgres.conn import Dsn, connect
from exapg.postgres.ctl import read_pidfile
from tests.conftest import Stack, build_stack

pytestmark = pytest.mark.integration
needs_citus = pytest.mark.skipif(
    not find_binaries().has_extension("citus"),
    reason="the citus extension is not installed for PostgreSQL 15 on this machine",
)

ROWS = 5_000
TABLES = ("kept", "spread")  # spread is distributed in cluster mode, and brought back before leaving it

# The files `up` writes; PostgreSQL's own files in a data directory change as it runs.
NODE_FILES = ("exapg.conf", "pg_hba.conf", "postgresql.conf", "postgresql.auto.conf", "standby.signal")


# -- what a change must keep, and what a refusal must not touch ----------------------------------------
def up(stack: Stack, mode: str, *extra: str):
    return stack.cli("up", "--mode", mode, *extra, timeout=300)


def bring(stack: Stack, mode: str, *extra: str) -> None:
    """Put the stack in `mode`, running, unless it already is."""
    state = stack.runtime.stack.state()
    running = state is not None and stack.server("coordinator").pidfile() is not None
    if running and state is not None and state.mode == mode:
        return
    if state is not None and state.mode == "cluster" and mode != "cluster":  # only with nothing distributed
        if not running:
            assert stack.cli("up").returncode == 0
        undistribute(stack)
    result = up(stack, mode, *extra)
    assert result.returncode == 0, result.stderr


def load(stack: Stack) -> None:
    with connect(stack.coordinator) as conn:
        for table in TABLES:
            conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, payload text)")
            conn.execute(f"INSERT INTO {table} SELECT g, md5(g::text) FROM generate_series(1, %s) g", (ROWS,))


def fingerprint(stack: Stack, dsn: Dsn | None = None) -> dict[str, tuple[int, int]]:
    """Rows and a checksum of each table, read on the coordinator (or on `dsn`)."""
    with connect(dsn or stack.coordinator) as conn:
        rows = {t: conn.execute(f"SELECT count(*), sum(hashtext(id::text || payload)) FROM {t}").fetchone()
                for t in TABLES}
    return {t: (int(r[0]), int(r[1])) for t, r in rows.items() if r is not None}


def distribute(stack: Stack) -> None:
    """spread becomes a distributed table, its rows on the workers."""
    with connect(stack.coordinator, statement_timeout_ms=0) as conn:
        if not conn.execute("SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'spread'::regclass").fetchone():
            conn.execute("SELECT create_distributed_table('spread', 'id')")
            conn.execute("SELECT truncate_local_data_after_distributing_table('spread')")
        on_workers = conn.execute("SELECT count(*) FROM citus_shards WHERE table_name = 'spread'::regclass "
                                  "AND nodeport <> %s", (stack.settings.coordinator_port,)).fetchone()
    assert on_workers and on_workers[0] > 0


def undistribute(stack: Stack) -> None:
    with connect(stack.coordinator, statement_timeout_ms=0) as conn:
        if conn.execute("SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'spread'::regclass").fetchone():
            conn.execute("SELECT undistribute_table('spread')")  # the rows come back to the coordinator


def snapshot(stack: Stack) -> dict[str, object]:
    """The state file, every file ExaPG writes, what is in the data directory and which
    postmasters run (by pid): all that a refused change must leave as it was."""
    s = stack.runtime.stack
    files: dict[str, tuple[int, bytes]] = {}
    written = [p for p in s.root.iterdir() if p.is_file()]
    for folder in (s.conf_dir, s.run_dir):  # sockets are not files; pidfiles stay as they are
        written += [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    for datadir in s.data_dir.iterdir():
        written += [datadir / name for name in NODE_FILES if (datadir / name).exists()]
    for path in written:
        files[str(path.relative_to(s.root))] = (path.stat().st_mtime_ns, path.read_bytes())
    pids = {d.name: (found.pid if (found := read_pidfile(d)) else None) for d in s.data_dir.iterdir()}
    return {"files": files, "data": sorted(p.name for p in s.data_dir.iterdir()), "postmasters": pids,
            "state": json.loads(s.state_path.read_text())}


def assert_refused(result, *says: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "nothing was changed" in lines[0]
    assert all(part in lines[0] for part in says), lines[0]


def running_nodes(stack: Stack) -> list[str]:
    return sorted(n.name for n in stack.runtime.stack.topology.nodes if stack.server(n.name).pidfile())


def assert_mode(stack: Stack, mode: str, nodes: list[str]) -> None:
    assert stack.runtime.stack.state().mode == mode
    assert running_nodes(stack) == sorted(nodes)


def assert_standby_has(stack: Stack, expected: dict[str, tuple[int, int]]) -> None:
    assert fingerprint(stack, stack.standby) == expected


# -- standalone <-> ha: the standby comes and goes -----------------------------------------------------
@pytest.fixture(scope="module")
def plain() -> Iterator[Stack]:
    stack = build_stack("standalone")
    try:
        load(stack)
        yield stack
    finally:
        stack.destroy()


def test_standalone_to_ha_adds_a_standby_with_every_row(plain):
    bring(plain, "standalone")
    before = fingerprint(plain)
    assert up(plain, "ha").returncode == 0
    assert_mode(plain, "ha", ["coordinator", "standby"])
    assert fingerprint(plain) == before
    assert_standby_has(plain, before)


def test_ha_to_standalone_retires_the_standby_and_keeps_every_row(plain):
    bring(plain, "ha")
    before = fingerprint(plain)
    assert up(plain, "standalone").returncode == 0
    assert_mode(plain, "standalone", ["coordinator"])
    assert fingerprint(plain) == before


def test_standalone_and_ha_change_on_a_stopped_stack_too(plain):
    bring(plain, "standalone")
    before = fingerprint(plain)
    for mode, nodes in (("ha", ["coordinator", "standby"]), ("standalone", ["coordinator"])):
        assert plain.cli("down").returncode == 0
        result = up(plain, mode)
        assert result.returncode == 0, result.stderr
        assert_mode(plain, mode, nodes)
        assert fingerprint(plain) == before


# -- into and out of cluster mode ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def citus_stack() -> Iterator[Stack]:
    if not find_binaries().has_extension("citus"):
        pytest.skip("the citus extension is not installed for PostgreSQL 15 on this machine")
    stack = build_stack("standalone")
    try:
        load(stack)
        yield stack
    finally:
        stack.destroy()


@needs_citus
def test_standalone_to_cluster_keeps_the_coordinators_tables_and_adds_workers(citus_stack):
    bring(citus_stack, "standalone")
    before = fingerprint(citus_stack)
    result = up(citus_stack, "cluster", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "coordinator: extension citus created" in result.stdout
    assert_mode(citus_stack, "cluster", ["coordinator", "worker1", "worker2"])
    assert fingerprint(citus_stack) == before  # local tables of the coordinator, as they were
    with connect(citus_stack.coordinator) as conn:
        state = citus_state(conn)
    assert state is not None and sum(n.role == "worker" and n.active for n in state.nodes) == 2
    distribute(citus_stack)  # and the new cluster distributes
    assert fingerprint(citus_stack) == before


@needs_citus
@pytest.mark.parametrize("target", ["ha", "standalone"])
def test_leaving_cluster_mode_with_a_distributed_table_is_refused_and_changes_nothing(citus_stack, target):
    bring(citus_stack, "cluster", "--workers", "2")
    distribute(citus_stack)
    before, rows = snapshot(citus_stack), fingerprint(citus_stack)
    assert_refused(up(citus_stack, target), "spread", "undistribute_table", f"--mode {target}")
    assert snapshot(citus_stack) == before
    assert fingerprint(citus_stack) == rows  # the distributed table still answers


@needs_citus
def test_leaving_cluster_mode_with_a_columnar_table_or_a_logical_slot_is_refused(citus_stack):
    bring(citus_stack, "cluster", "--workers", "2")
    undistribute(citus_stack)
    holders = [
        ("CREATE TABLE archive USING columnar AS SELECT * FROM kept", "DROP TABLE archive",
         ["columnar", "alter_table_set_access_method('archive', 'heap')"]),
        ("SELECT pg_create_logical_replication_slot('feed', 'pgoutput')", "SELECT pg_drop_replication_slot('feed')",
         ["slot(s) feed", "pg_drop_replication_slot('feed')"]),
    ]
    for create, drop, says in holders:
        with connect(citus_stack.coordinator) as conn:
            conn.execute(create)
        before = snapshot(citus_stack)
        try:
            assert_refused(up(citus_stack, "standalone"), *says)
            assert snapshot(citus_stack) == before
        finally:
            with connect(citus_stack.coordinator) as conn:
                conn.execute(drop)


@needs_citus
def test_leaving_cluster_mode_on_a_stopped_stack_is_refused_and_changes_nothing(citus_stack):
    bring(citus_stack, "cluster", "--workers", "2")
    undistribute(citus_stack)  # even with nothing distributed: a stopped stack cannot tell
    rows = fingerprint(citus_stack)
    assert citus_stack.cli("down").returncode == 0
    before = snapshot(citus_stack)
    assert_refused(up(citus_stack, "ha"), "is stopped", "'exapg up'")
    assert snapshot(citus_stack) == before
    assert not any(before["postmasters"].values())  # nothing was started to look either
    assert citus_stack.cli("up").returncode == 0  # as the message says: start it as it is
    assert_mode(citus_stack, "cluster", ["coordinator", "worker1", "worker2"])
    assert fingerprint(citus_stack) == rows


@needs_citus
def test_cluster_to_ha_once_nothing_is_distributed_drops_citus_and_keeps_every_row(citus_stack):
    bring(citus_stack, "cluster", "--workers", "2")
    distribute(citus_stack)
    rows = fingerprint(citus_stack)
    undistribute(citus_stack)  # what the refusal says to do
    result = up(citus_stack, "ha")
    assert result.returncode == 0, result.stderr
    assert "coordinator: extension citus dropped" in result.stdout
    assert_mode(citus_stack, "ha", ["coordinator", "standby"])
    assert fingerprint(citus_stack) == rows
    assert_standby_has(citus_stack, rows)
    with connect(citus_stack.coordinator) as conn:
        preloaded = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    assert preloaded is not None and preloaded[0] == "pg_stat_statements"
    set_aside = citus_stack.runtime.stack.data_dir.glob(".removed-worker*")
    assert {p.name.split("-")[1] for p in set_aside} >= {"worker1", "worker2"}  # never deleted


@needs_citus
def test_ha_to_cluster_restarts_the_coordinator_with_citus(citus_stack):
    bring(citus_stack, "ha")
    rows = fingerprint(citus_stack)
    result = up(citus_stack, "cluster", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "coordinator: restarted" in result.stdout and "standby: stopped" in result.stdout
    assert_mode(citus_stack, "cluster", ["coordinator", "worker1", "worker2"])
    assert fingerprint(citus_stack) == rows
    distribute(citus_stack)
    assert fingerprint(citus_stack) == rows


@needs_citus
def test_cluster_to_standalone_once_nothing_is_distributed(citus_stack):
    bring(citus_stack, "cluster", "--workers", "2")
    undistribute(citus_stack)
    rows = fingerprint(citus_stack)
    result = up(citus_stack, "standalone")
    assert result.returncode == 0, result.stderr
    assert_mode(citus_stack, "standalone", ["coordinator"])
    assert fingerprint(citus_stack) == rows


@needs_citus
def test_into_cluster_mode_on_a_stopped_stack(citus_stack):
    bring(citus_stack, "standalone")
    rows = fingerprint(citus_stack)
    assert citus_stack.cli("down").returncode == 0
    result = up(citus_stack, "cluster", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert_mode(citus_stack, "cluster", ["coordinator", "worker1"])
    assert fingerprint(citus_stack) == rows


@needs_citus
def test_a_standby_kept_in_cluster_mode_follows_the_coordinator_in_and_out(citus_stack):
    """ha -> cluster --standby -> ha: both servers restart with Citus and without it, and the
    standby replays through the coordinator's restarts."""
    bring(citus_stack, "ha")
    rows = fingerprint(citus_stack)
    for mode, extra, nodes in (("cluster", ("--workers", "1", "--standby"), ["coordinator", "standby", "worker1"]),
                               ("ha", (), ["coordinator", "standby"])):
        result = up(citus_stack, mode, *extra)
        assert result.returncode == 0, result.stderr
        assert "standby: restarted" in result.stdout
        assert_mode(citus_stack, mode, nodes)
        assert_standby_has(citus_stack, rows)
