"""Citus membership, run against the coordinator: shared by the local runtime and the
Docker worker image (`python -m exapg.cluster.register`).

Citus does the distributing; ExaPG only orchestrates it: registration is idempotent,
and a worker is removed only after Citus has drained every placement off it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from exapg.errors import ExaPGError, InvalidParameterError, OperationTimeoutError

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
# Created beside citus where the Citus build ships them: since Citus 13.2 columnar storage is
# its own extension, no longer created by CREATE EXTENSION citus.
OPTIONAL_EXTENSIONS = ("citus_columnar",)


@dataclass(frozen=True)
class WorkerInfo:
    host: str
    port: int
    active: bool
    shards: int
    bytes: int


def conninfo_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def set_auth(conn: psycopg.Connection, role: str, password: str) -> None:
    """Store the password Citus uses between nodes (pg_dist_authinfo; nodeid 0 = every node)."""
    authinfo = f"password={conninfo_quote(password)}"
    conn.execute("DELETE FROM pg_dist_authinfo WHERE nodeid = 0 AND rolename = %s", (role,))
    conn.execute(
        "INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, %s, %s)", (role, authinfo)
    )


def set_coordinator(conn: psycopg.Connection, host: str, port: int) -> None:
    conn.execute("SELECT citus_set_coordinator_host(%s, %s)", (host, port))


def register_worker(conn: psycopg.Connection, host: str, port: int) -> bool:
    """Add the worker unless it is already known; True when it was added (or re-activated)."""
    row = conn.execute(
        "SELECT isactive FROM pg_dist_node WHERE nodename = %s AND nodeport = %s", (host, port)
    ).fetchone()
    if row is None:
        conn.execute("SELECT citus_add_node(%s, %s)", (host, port))
        return True
    if not row[0]:
        conn.execute("SELECT citus_activate_node(%s, %s)", (host, port))
        return True
    return False


def placements_on(conn: psycopg.Connection, host: str, port: int) -> int:
    """Placements that exist only by being moved: reference-table copies live on every node
    and citus_remove_node drops them itself."""
    row = conn.execute(
        "SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
        "JOIN pg_dist_shard s USING (shardid) JOIN pg_dist_partition t USING (logicalrelid) "
        "WHERE n.nodename = %s AND n.nodeport = %s AND t.partmethod <> 'n'",
        (host, port),
    ).fetchone()
    return int(row[0]) if row else 0


def remove_worker(conn: psycopg.Connection, host: str, port: int) -> None:
    """Drain the worker, check that nothing is left on it, then remove it from the metadata."""
    known = conn.execute(
        "SELECT 1 FROM pg_dist_node WHERE nodename = %s AND nodeport = %s", (host, port)
    ).fetchone()
    if not known:
        return
    conn.execute("SELECT citus_set_node_property(%s, %s, 'shouldhaveshards', false)", (host, port))
    try:
        conn.execute("SELECT citus_drain_node(%s, %s)", (host, port))
    except psycopg.Error as exc:
        # The node stays as it was: a member that takes shards again (what moved stays moved).
        conn.execute("SELECT citus_set_node_property(%s, %s, 'shouldhaveshards', true)", (host, port))
        raise ExaPGError(f"draining worker {host}:{port} failed, it was kept: {_first_line(str(exc))}") from None
    left = placements_on(conn, host, port)
    if left:
        raise ExaPGError(
            f"worker {host}:{port} still holds {left} shard placement(s) after draining: "
            "it was not removed; check 'exapg status' and retry"
        )
    conn.execute("SELECT citus_remove_node(%s, %s)", (host, port))


@dataclass(frozen=True)
class Holdings:
    """What a coordinator keeps that only cluster mode can serve (see `holdings`)."""

    tables: tuple[str, ...]  # distributed, reference and Citus-managed local tables
    columnar: tuple[str, ...]  # tables in Citus's columnar storage
    logical_slots: tuple[str, ...]  # they need wal_level logical, which only cluster mode sets


def holdings(conn: psycopg.Connection) -> Holdings:
    """Tables Citus manages (their data lives on the workers), columnar tables and logical
    replication slots, in the connected database; empty lists where Citus is not there."""
    citus = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone()
    tables = conn.execute(
        "SELECT logicalrelid::regclass::text FROM pg_dist_partition ORDER BY 1"
    ).fetchall() if citus else []
    columnar = conn.execute(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
        "WHERE a.amname = 'columnar' AND c.relkind IN ('r', 'm') ORDER BY 1"
    ).fetchall()
    slots = conn.execute(
        "SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY 1"
    ).fetchall()
    return Holdings(tuple(r[0] for r in tables), tuple(r[0] for r in columnar), tuple(r[0] for r in slots))


def start_rebalance(conn: psycopg.Connection) -> int | None:
    """Start Citus's background rebalance; the job id, or None when nothing needs moving."""
    try:
        row = conn.execute("SELECT citus_rebalance_start()").fetchone()
    except psycopg.errors.ObjectNotInPrerequisiteState:
        return None
    return int(row[0]) if row and row[0] is not None else None


def rebalance(conn: psycopg.Connection, *, wait: bool, progress: Callable[[str], None],
              timeout: float = 3600) -> str:
    """Start the background rebalance and, with `wait`, follow it to its end; one line on
    what happened."""
    job = start_rebalance(conn)
    if job is None:
        return "shards are balanced: nothing to move"
    if not wait:
        return f"rebalance job {job} started in the background"
    wait_rebalance(conn, job, timeout=timeout, progress=progress)
    return f"rebalance job {job} finished"


def wait_rebalance(
    conn: psycopg.Connection, job_id: int, timeout: float, progress: Callable[[str], None]
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute(
            "SELECT state::text, details FROM citus_job_status(%s)", (job_id,)
        ).fetchone()
        state, details = (row[0], row[1]) if row else ("finished", None)
        if state in ("finished", "cancelled", "failed"):
            if state != "finished":
                raise ExaPGError(f"rebalance job {job_id} {state}: see citus_rebalance_status()")
            return
        _raise_if_stuck(job_id, details)
        tasks = (details or {}).get("task_state_counts", {}) if isinstance(details, dict) else {}
        done = tasks.get("done", 0)
        total = sum(tasks.values()) if tasks else 0
        progress(f"rebalancing shards: {done}/{total} moves done")
        if time.monotonic() > deadline:
            raise OperationTimeoutError(
                f"rebalance job {job_id} still running after {timeout:.0f}s: it goes on in the "
                "background; follow it with SELECT * FROM citus_rebalance_status()"
            )
        time.sleep(0.5)


def _raise_if_stuck(job_id: int, details: object) -> None:
    """A move that keeps failing is reported instead of waited on forever."""
    tasks = details.get("tasks", []) if isinstance(details, dict) else []
    for task in tasks:
        if task.get("retried", 0) >= 3 and task.get("message"):
            reason = str(task["message"]).strip().splitlines()[0]
            raise ExaPGError(
                f"rebalance job {job_id} keeps failing ({reason}); it retries in the background: "
                "fix the cause or stop it with SELECT citus_rebalance_stop()"
            )


def workers(conn: psycopg.Connection) -> list[WorkerInfo]:
    """Workers from pg_dist_node with their shard count and data size (one query)."""
    rows = conn.execute(
        """
        SELECT n.nodename, n.nodeport, n.isactive,
               count(s.shardid),
               coalesce(sum(s.shard_size), 0)
        FROM pg_dist_node n
        LEFT JOIN citus_shards s ON s.nodename = n.nodename AND s.nodeport = n.nodeport
        WHERE n.noderole = 'primary' AND n.groupid <> 0
        GROUP BY 1, 2, 3 ORDER BY 2
        """
    ).fetchall()
    return [WorkerInfo(r[0], int(r[1]), bool(r[2]), int(r[3]), int(r[4])) for r in rows]


def table_identifier(name: str) -> sql.Composed:
    """'table' or 'schema.table', validated, as a quoted identifier."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(NAME_RE.match(p) for p in parts):
        raise InvalidParameterError(
            f"invalid table name {name!r}: use table or schema.table (letters, digits, _)"
        )
    return sql.SQL(".").join(sql.Identifier(p) for p in parts)


def column_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidParameterError(f"invalid column name {name!r}: letters, digits and _ only")
    return name


def require_table(conn: psycopg.Connection, name: str) -> str:
    table = table_identifier(name).as_string(conn)
    found = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    if found is None or found[0] is None:
        raise InvalidParameterError(f"table {name!r} does not exist in the coordinator's database")
    return table


def distribute(
    conn: psycopg.Connection, table: str, column: str, colocate_with: str | None, shard_count: int | None
) -> None:
    qualified = require_table(conn, table)
    column_name(column)
    exists = conn.execute(
        "SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s AND NOT attisdropped",
        (qualified, column),
    ).fetchone()
    if not exists:
        raise InvalidParameterError(f"table {table!r} has no column {column!r}")
    colocate = require_table(conn, colocate_with) if colocate_with else "default"
    if shard_count is not None and colocate_with:
        raise InvalidParameterError("--shard-count and --colocate-with cannot be combined")
    if shard_count is not None:
        conn.execute(
            "SELECT create_distributed_table(%s, %s, shard_count => %s)", (qualified, column, shard_count)
        )
    else:
        conn.execute(
            "SELECT create_distributed_table(%s, %s, colocate_with => %s)", (qualified, column, colocate)
        )


def make_reference(conn: psycopg.Connection, table: str) -> None:
    conn.execute("SELECT create_reference_table(%s)", (require_table(conn, table),))


def make_columnar(conn: psycopg.Connection, table: str) -> None:
    conn.execute("SELECT alter_table_set_access_method(%s, 'columnar')", (require_table(conn, table),))


# -- what operators look at: pg_dist_node, shards per node, the running rebalance -------------

REACH_TIMEOUT_MS = 2000  # a worker that does not answer within this is reported unreachable

STATE_SQL = """
SELECT n.nodeid, n.nodename, n.nodeport, n.groupid = 0 AS is_coordinator,
       n.isactive, n.shouldhaveshards,
       CASE WHEN n.groupid = 0 THEN true ELSE w.success END AS reachable,
       CASE WHEN w.success THEN NULL ELSE w.result END AS error,
       (SELECT count(*) FROM citus_shards s
         WHERE s.nodename = n.nodename AND s.nodeport = n.nodeport) AS shards,
       (SELECT coalesce(sum(s.shard_size), 0) FROM citus_shards s
         WHERE s.nodename = n.nodename AND s.nodeport = n.nodeport) AS bytes
FROM pg_dist_node n
LEFT JOIN run_command_on_workers('SELECT 1') w
  ON w.nodename = n.nodename AND w.nodeport = n.nodeport
WHERE n.noderole = 'primary'
ORDER BY n.groupid, n.nodeport
"""

REBALANCE_SQL = """
SELECT job_id, state::text, started_at, finished_at, details
FROM citus_rebalance_status()
"""

RUNNING_JOB_STATES = frozenset({"scheduled", "running", "cancelling", "failing"})


@dataclass(frozen=True)
class CitusNode:
    """A row of pg_dist_node as an operator wants it: is it there, and what does it hold."""

    node_id: int
    host: str
    port: int
    role: str  # "coordinator" or "worker"
    active: bool  # pg_dist_node.isactive: Citus routes queries to it
    should_have_shards: bool
    reachable: bool | None  # the coordinator could open a connection to it just now
    shards: int  # shard placements, reference-table copies included
    bytes: int  # their size (a node that cannot be reached reports what is known)
    error: str | None = None


@dataclass(frozen=True)
class RebalanceProgress:
    """The latest rebalance job (citus_rebalance_status())."""

    job_id: int
    state: str
    running: bool
    tasks_total: int
    tasks_done: int
    started_at: float | None  # unix time
    finished_at: float | None
    message: str | None = None  # the error of a failing move, if any


@dataclass(frozen=True)
class CitusState:
    version: str
    nodes: list[CitusNode]
    rebalance: RebalanceProgress | None


def citus_state(conn: psycopg.Connection) -> CitusState | None:
    """Citus membership and shards, and the latest rebalance; None where Citus is not installed.

    The reachability probe runs with a short connection timeout, so an unreachable worker
    costs seconds, not Citus's default half a minute.
    """
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'citus'").fetchone()
    if row is None:
        return None
    with conn.transaction():
        conn.execute(
            "SELECT set_config('citus.node_connection_timeout', %s, true)", (str(REACH_TIMEOUT_MS),)
        )
        nodes = [node_from_row(r) for r in conn.execute(STATE_SQL).fetchall()]
        job = conn.execute(REBALANCE_SQL).fetchone()
    return CitusState(version=str(row[0]), nodes=nodes, rebalance=rebalance_from_row(job) if job else None)


def node_from_row(row: Sequence[Any]) -> CitusNode:
    node_id, host, port, is_coordinator, active, should, reachable, error, shards, size = row
    return CitusNode(
        node_id=int(node_id), host=str(host), port=int(port),
        role="coordinator" if is_coordinator else "worker",
        active=bool(active), should_have_shards=bool(should),
        reachable=None if reachable is None else bool(reachable),
        shards=int(shards), bytes=int(size),
        error=_first_line(error) if error else None,
    )


def rebalance_from_row(row: Sequence[Any]) -> RebalanceProgress:
    """Progress from citus_rebalance_status()'s details: task_state_counts and failing tasks."""
    job_id, state, started, finished, details = row
    details = details if isinstance(details, dict) else {}
    counts = details.get("task_state_counts") or {}
    messages = [
        _first_line(str(t["message"])) for t in details.get("tasks") or []
        if isinstance(t, dict) and t.get("message")
    ]
    return RebalanceProgress(
        job_id=int(job_id), state=str(state), running=str(state) in RUNNING_JOB_STATES,
        tasks_total=int(sum(int(v) for v in counts.values())), tasks_done=int(counts.get("done", 0)),
        started_at=started.timestamp() if started else None,
        finished_at=finished.timestamp() if finished else None,
        message=messages[0] if messages else None,
    )


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""
