"""Switchover, failover and rejoin on a real ha stack, each under a write loop: every
transaction whose COMMIT returned is on the new primary, and the other node follows it.

One stack serves the module's tests in turn; each test reads which node is primary from
the stack's state rather than assuming it.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from exapg.cluster.topology import Node
from exapg.postgres.conn import Dsn
from exapg.proc import wait_until
from tests.conftest import Stack, build_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ha() -> Iterator[Stack]:
    stack = build_stack("ha")
    try:
        with psycopg.connect(**stack.runtime.stack.dsn().kwargs(), autocommit=True) as conn:
            conn.execute("CREATE TABLE writes (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
        yield stack
    finally:
        stack.destroy()


class Writer(threading.Thread):
    """Inserts one row per transaction and records each id whose COMMIT returned; through
    pgBouncer it reconnects after an error, on a node directly it stops at the first one."""

    ids = itertools.count(1)

    def __init__(self, dsn: Dsn, reconnect: bool) -> None:
        super().__init__(daemon=True)
        self.dsn, self.reconnect = dsn, reconnect
        self.committed: list[int] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                # no server-side prepared statements: pgBouncer's transaction pooling moves
                # clients between server connections (and a switchover to another server)
                with psycopg.connect(**self.dsn.kwargs(), autocommit=True, prepare_threshold=None) as conn:
                    while not self.halt.is_set():
                        row = next(self.ids)
                        conn.execute("INSERT INTO writes (id) VALUES (%s)", (row,))
                        self.committed.append(row)
            except psycopg.Error as exc:
                self.errors.append(str(exc).strip().splitlines()[0])
                if not self.reconnect:
                    return
                time.sleep(0.05)

    def stop(self) -> None:
        self.halt.set()
        self.join(30)


def nodes(stack: Stack) -> tuple[Node, Node]:
    """(primary, standby) as the stack's state says now."""
    topology = stack.runtime.stack.topology
    return topology.coordinator, topology.standbys[0]


def sql(stack: Stack, node: str, query: str) -> list[tuple]:
    with psycopg.connect(**stack.runtime.stack.dsn(node).kwargs(), autocommit=True) as conn:
        cursor = conn.execute(query)
        return cursor.fetchall() if cursor.description else []


def stored_ids(stack: Stack, node: str) -> set[int]:
    return {row[0] for row in sql(stack, node, "SELECT id FROM writes")}


def assert_follows(stack: Stack, standby: Node, primary: Node) -> None:
    """`standby` is in recovery and streams from `primary`'s port."""
    def streaming() -> bool:
        rows = sql(stack, standby.name, "SELECT status, sender_port FROM pg_stat_wal_receiver")
        return rows == [("streaming", primary.port)]
    assert sql(stack, standby.name, "SELECT pg_is_in_recovery()") == [(True,)]
    assert wait_until(streaming, 30), sql(stack, standby.name, "SELECT * FROM pg_stat_wal_receiver")


def api_login(stack: Stack) -> int:
    """A login through the stack's management API: it writes a session and an audit record."""
    answer = httpx.post(f"http://127.0.0.1:{stack.settings.mgmt_backend_port}/api/auth/login", timeout=30,
                        json={"username": "admin", "password": stack.runtime.stack.secrets.admin_password})
    return answer.status_code


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_switchover_under_writes_through_pgbouncer_loses_nothing_and_swaps_back(ha):
    for _ in range(2):
        old, new = nodes(ha)
        writer = Writer(ha.pgbouncer, reconnect=True)
        writer.start()
        assert wait_until(lambda: len(writer.committed) >= 50, 30)
        result = ha.cli("switchover")
        switched_at = len(writer.committed)
        assert wait_until(lambda: len(writer.committed) >= switched_at + 50, 30)
        writer.stop()
        assert result.returncode == 0, result.stderr
        assert f"{new.name} is the primary now" in result.stdout and "timeline" in result.stdout
        assert nodes(ha)[0].name == new.name
        assert len(writer.committed) > switched_at > 0, "writes go on through pgBouncer after the switch"
        assert writer.errors == [], "pgBouncer held its clients' queries during the switch"
        assert not set(writer.committed) - stored_ids(ha, new.name)
        assert_follows(ha, nodes(ha)[1], nodes(ha)[0])
        assert "management_backend: restarted" in result.stdout
        assert api_login(ha) == 200, "the management API writes (a login) on the new primary"
    kinds = sql(ha, nodes(ha)[0].name, "SELECT kind, from_server, to_server FROM exapg.role_changes ORDER BY at")
    assert kinds[-2:] == [("switchover", new.name, old.name), ("switchover", old.name, new.name)]


class PooledWrite(threading.Thread):
    """A client of pgBouncer that retries one INSERT until it commits, as an application
    would; `done` is when it committed (or None after 60 s), `failures` its failed tries."""

    def __init__(self, stack: Stack, row_id: int) -> None:
        super().__init__(daemon=True)
        self.stack, self.row_id = stack, row_id
        self.done: float | None = None
        self.failures: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while self.done is None and time.monotonic() < deadline:
            try:
                with psycopg.connect(**self.stack.pgbouncer.kwargs(connect_timeout=10), autocommit=True) as conn:
                    conn.execute("INSERT INTO writes (id) VALUES (%s)", (self.row_id,))
                self.done = time.monotonic()
            except psycopg.errors.UniqueViolation:  # an earlier try committed, its answer lost
                self.done = time.monotonic()
            except psycopg.Error as exc:
                self.failures.append(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
                time.sleep(0.2)


def test_failover_after_the_primary_is_killed_keeps_every_commit(ha):
    old, new = nodes(ha)
    writer = Writer(ha.runtime.stack.dsn(old.name), reconnect=False)
    writer.start()
    assert wait_until(lambda: len(writer.committed) >= 50, 30)
    os.kill(ha.server(old.name).pidfile().pid, signal.SIGKILL)
    writer.join(30)
    assert writer.committed and writer.errors, "the write loop ran until the primary died"
    pooled = PooledWrite(ha, -4)  # a client of pgBouncer while the primary is dead
    pooled.start()
    result = ha.cli("failover")
    returned = time.monotonic()
    assert result.returncode == 0, result.stderr
    pooled.join(30)
    assert pooled.done is not None, pooled.failures[-3:]
    # pgBouncer failed its login to the dead primary; it must not then wait its default
    # 15 s (server_login_retry) before trying the new one
    assert pooled.done - returned < 3, f"pgBouncer's client waited {pooled.done - returned:.1f} s after the failover"
    assert -4 in stored_ids(ha, new.name)
    assert nodes(ha)[0].name == new.name
    assert not set(writer.committed) - stored_ids(ha, new.name)
    assert_follows(ha, nodes(ha)[1], nodes(ha)[0])
    with psycopg.connect(**ha.pgbouncer.kwargs(), autocommit=True) as conn:
        conn.execute("INSERT INTO writes (id) VALUES (-1)")
    assert -1 in stored_ids(ha, new.name)
    last = sql(ha, new.name, "SELECT kind, from_server, to_server, timeline FROM exapg.role_changes "
                             "ORDER BY at DESC")[0]
    assert last[:3] == ("failover", old.name, new.name) and last[3] > 1
    assert api_login(ha) == 200, "the management API writes (a login) on the new primary"


def test_split_brain_shows_and_rejoin_makes_the_promoted_standby_follow_again(ha):
    primary, standby = nodes(ha)
    ha.server(standby.name).promote()
    sql(ha, standby.name, "INSERT INTO writes (id) VALUES (-2)")  # stray: pgBouncer never sees it
    with psycopg.connect(**ha.pgbouncer.kwargs(), autocommit=True) as conn:
        conn.execute("INSERT INTO writes (id) VALUES (-3)")
    statuses = {s["name"]: s for s in json.loads(ha.cli("status", "--json").stdout)}
    assert not statuses[primary.name]["healthy"] and "split brain" in statuses[primary.name]["detail"]
    assert not statuses[standby.name]["healthy"]
    assert f"exapg rejoin {standby.name}" in statuses[standby.name]["detail"]
    assert "on timeline" in statuses[standby.name]["detail"] and "on timeline" in statuses[primary.name]["detail"]
    assert statuses["pgbouncer"]["detail"].startswith(f"sends clients to {primary.name}")
    assert ha.cli("health").returncode == 1

    result = ha.cli("rejoin", standby.name)
    assert result.returncode == 0, result.stderr
    assert nodes(ha)[0].name == primary.name, "rejoin never changes the primary"
    assert_follows(ha, standby, primary)
    assert wait_until(lambda: -3 in stored_ids(ha, standby.name), 30)
    assert -2 not in stored_ids(ha, standby.name) | stored_ids(ha, primary.name)
    again = ha.cli("rejoin")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert ha.cli("health").returncode == 0


def test_rejoin_rebuild_clones_the_standby_again_and_keeps_its_old_data(ha):
    primary, standby = nodes(ha)
    result = ha.cli("rejoin", "--rebuild")
    assert result.returncode == 0, result.stderr
    # the one this rejoin names: an earlier rejoin may have cloned too, where the WAL before
    # the divergence was gone and pg_rewind could not run
    aside = [p for p in standby.datadir.parent.iterdir()
             if p.name.startswith(f".removed-{standby.name}-") and str(p) in result.stdout]
    assert len(aside) == 1 and (aside[0] / "PG_VERSION").is_file()
    assert_follows(ha, standby, primary)
    assert ha.cli("health").returncode == 0


def test_refusals_change_nothing(ha):
    state = ha.runtime.stack.state_path
    before = state.read_bytes()
    result = ha.cli("failover")
    assert result.returncode == 1
    assert "exapg switchover" in one_error_line(result)
    assert state.read_bytes() == before
    primary = nodes(ha)[0].name
    assert ha.cli("rejoin", primary).returncode == 2

    standalone = build_stack("standalone")
    try:
        for command in ("switchover", "failover", "rejoin"):
            refused = standalone.cli(command)
            assert refused.returncode == 2, refused.stderr
            assert "ha-mode stack" in one_error_line(refused)
    finally:
        standalone.destroy()
