"""Sessions and statements across every node: list, cancel, terminate, top statements."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from exapg.api.core.db import APP_NAME, Pools
from exapg.api.core.errors import NotFoundError
from exapg.api.services.redact import redact_sql
from exapg.errors import ExaPGError, first_line

ACTIVITY_SQL = """
SELECT pid, usename, datname, application_name, host(client_addr) AS client_addr, state,
       wait_event_type, wait_event, query_start,
       extract(epoch FROM clock_timestamp() - query_start)::float8 AS duration_seconds,
       left(query, 4000) AS query
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
   AND (%(idle)s OR state IS DISTINCT FROM 'idle')
   AND (%(internal)s OR application_name <> %(app)s)
 ORDER BY query_start NULLS LAST, pid
"""
SIGNALS = {"cancel": "pg_cancel_backend", "terminate": "pg_terminate_backend"}
PER_NODE_WAIT = 3.0


def list_activity(
    pools: Pools,
    nodes: list[str],
    *,
    include_idle: bool,
    include_internal: bool,
    every_literal: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Sessions of every node, and one error per node that could not be read (query texts
    redacted: see `_redacted`)."""
    params = {"idle": include_idle, "internal": include_internal, "app": APP_NAME}

    def one(node: str) -> list[dict[str, Any]] | str:
        try:
            with (
                pools.connection(node, timeout=PER_NODE_WAIT) as conn,
                conn.cursor(row_factory=dict_row) as cur,
            ):
                rows = cur.execute(ACTIVITY_SQL, params)
                return [_redacted({"node": node, **row}, every_literal) for row in rows]
        except (ExaPGError, psycopg.Error) as exc:
            return first_line(exc)

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(nodes)))) as executor:
        results = list(executor.map(one, nodes))
    rows = [r for result in results if isinstance(result, list) for r in result]
    errors = [
        {"node": n, "error": r} for n, r in zip(nodes, results, strict=True) if isinstance(r, str)
    ]
    return rows, errors


def _redacted(row: dict[str, Any], every_literal: bool) -> dict[str, Any]:
    """Every query text leaves the API through here: no password or key literal in it, and
    with `every_literal` (roles below admin) no string literal at all."""
    return {**row, "query": redact_sql(row["query"], every_literal=every_literal)}


def signal_backend(pools: Pools, *, node: str, pid: int, action: str) -> bool:
    """pg_cancel_backend / pg_terminate_backend on a client session of `node`."""
    query = sql.SQL(
        "SELECT {}(pid) FROM pg_stat_activity "
        "WHERE pid = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    ).format(sql.Identifier(SIGNALS[action]))
    with pools.connection(node) as conn:
        row = conn.execute(query, (pid,)).fetchone()
    if row is None:
        raise NotFoundError(f"no client session with pid {pid} on {node}")
    return bool(row[0])


TOP_SQL = """
SELECT queryid::text AS queryid, left(query, 2000) AS query, calls,
       total_exec_time AS total_ms, mean_exec_time AS mean_ms, rows,
       CASE WHEN shared_blks_hit + shared_blks_read > 0
            THEN shared_blks_hit::float8 / (shared_blks_hit + shared_blks_read)
       END AS cache_hit_ratio
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
 ORDER BY total_exec_time DESC
 LIMIT %s
"""


def top_statements(
    pools: Pools, *, limit: int, every_literal: bool = True
) -> tuple[bool, str | None, list[dict[str, Any]]]:
    with pools.connection() as conn:
        if (
            conn.execute(
                "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
            ).fetchone()
            is None
        ):
            return False, "the pg_stat_statements extension is not installed in this database", []
        try:
            with conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(TOP_SQL, (limit,))
                return True, None, [_redacted(row, every_literal) for row in rows]
        except psycopg.errors.ObjectNotInPrerequisiteState:
            return False, "pg_stat_statements is not in shared_preload_libraries", []
