"""Dashboard numbers: one SQL round trip on the coordinator, plus an in-process sampler.

The sampler runs in a background thread every `interval` seconds. It keeps an hour of
samples (the charts' fallback when Prometheus does not run), the latest health of every
node, and pgBouncer's pools, so an overview request costs a single query.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from exapg.api.access import StackAccess
from exapg.api.core.db import Pools
from exapg.cluster.probe import NodeReport
from exapg.errors import first_line
from exapg.postgres.conn import connect

# {size} is pg_database_size(...) for the sampler and NULL on the request path: it stats
# every file of the database (about 1 ms of the 1.7 ms this query costs), and a size
# a few seconds old is as good on a dashboard.
OVERVIEW_SQL = """
SELECT
  current_database() AS database,
  {size}::bigint AS size_bytes,
  current_setting('max_connections')::int AS max_connections,
  (SELECT coalesce(json_object_agg(state, n), '{}'::json) FROM (
     SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' GROUP BY 1) s) AS by_state,
  d.xact_commit + d.xact_rollback AS xacts,
  d.blks_hit, d.blks_read,
  extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS uptime_seconds,
  CASE WHEN NOT pg_is_in_recovery() THEN (
    SELECT coalesce(json_agg(json_build_object(
      'name', application_name, 'state', state,
      'lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8,
      'lag_seconds', CASE WHEN pg_current_wal_lsn() = replay_lsn THEN 0
                          ELSE coalesce(extract(epoch FROM replay_lag)::float8, 0) END)
      ORDER BY application_name), '[]'::json) FROM pg_stat_replication) END AS replication
FROM pg_stat_database d WHERE d.datname = current_database()
"""
HISTORY = 720  # one hour at the default 5 s interval
log = logging.getLogger(__name__)


SAMPLER_SQL = OVERVIEW_SQL.replace("{size}", "pg_database_size(current_database())")
LIVE_SQL = OVERVIEW_SQL.replace("{size}", "NULL")


def read_overview(conn: psycopg.Connection) -> dict[str, Any]:
    """The sampler's reading, database size included."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(SAMPLER_SQL).fetchone()
    assert row is not None
    row["at"] = time.time()
    return row


def read_coordinator(pools: Pools) -> dict[str, Any]:
    """The sampler's reading of the coordinator, through the API's pools."""
    with pools.connection() as conn:
        return read_overview(conn)


async def read_live_overview(conn: psycopg.AsyncConnection) -> dict[str, Any]:
    """The request path's reading: everything but the database size."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(LIVE_SQL)
        row = await cur.fetchone()
    assert row is not None
    row["at"] = time.time()
    return row


def cache_hit_ratio(hit: int, read: int) -> float | None:
    return round(hit / (hit + read), 6) if hit + read > 0 else None


@dataclass(frozen=True)
class Sample:
    at: float
    size_bytes: int | None
    xacts: int
    tps: float | None
    connections: int
    active: int
    cache_hit_ratio: float | None
    replication_lag_seconds: float | None
    replication_lag_bytes: float | None


def make_sample(
    row: dict[str, Any], previous: Sample | None, prev_blocks: tuple[int, int] | None
) -> Sample:
    """A sample from an overview row; rates against the previous sample."""
    tps = None
    if previous is not None and row["at"] > previous.at:
        tps = max(0.0, (row["xacts"] - previous.xacts) / (row["at"] - previous.at))
    hit, read = row["blks_hit"], row["blks_read"]
    if prev_blocks is not None:
        hit, read = hit - prev_blocks[0], read - prev_blocks[1]
    lags = row["replication"] or []
    return Sample(
        at=row["at"],
        size_bytes=row["size_bytes"],
        xacts=row["xacts"],
        tps=tps,
        connections=sum(row["by_state"].values()),
        active=int(row["by_state"].get("active", 0)),
        cache_hit_ratio=cache_hit_ratio(hit, read),
        replication_lag_seconds=max((x["lag_seconds"] or 0 for x in lags), default=None),
        replication_lag_bytes=max((x["lag_bytes"] or 0 for x in lags), default=None),
    )


@dataclass
class SamplerState:
    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=HISTORY))
    nodes: list[NodeReport] = field(default_factory=list)
    pools: list[dict[str, Any]] | None = None
    blocks: tuple[int, int] | None = None
    errors: dict[str, str] = field(default_factory=dict)


class Sampler:
    """Background sampling; every source is optional and failures are kept, not raised."""

    def __init__(
        self,
        *,
        interval: float,
        overview: Callable[[], dict[str, Any]],
        nodes: Callable[[], list[NodeReport]],
        pools: Callable[[], list[dict[str, Any]] | None],
    ) -> None:
        self.interval = interval
        self._sources = {"overview": overview, "nodes": nodes, "pools": pools}
        self.state = SamplerState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="exapg-mgmt-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample_once()

    def sample_once(self) -> None:
        results: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, source in self._sources.items():
            try:
                results[name] = source()
            except Exception as exc:
                errors[name] = first_line(exc)
        with self._lock:
            self._apply(results, errors)

    def _apply(self, results: dict[str, Any], errors: dict[str, str]) -> None:
        state = self.state
        if "overview" in results:
            row = results["overview"]
            previous = state.samples[-1] if state.samples else None
            state.samples.append(make_sample(row, previous, state.blocks))
            state.blocks = (row["blks_hit"], row["blks_read"])
        if "nodes" in results:
            state.nodes = results["nodes"]
        state.pools = results.get("pools")  # a pooler that stopped answering shows as absent
        state.errors = errors

    def latest(self) -> Sample | None:
        with self._lock:
            return self.state.samples[-1] if self.state.samples else None

    def history(self, since: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.state.samples if s.at >= since]

    def nodes(self) -> list[NodeReport]:
        with self._lock:
            return list(self.state.nodes)

    def pools(self) -> list[dict[str, Any]] | None:
        with self._lock:
            return self.state.pools


def live_tps(row: dict[str, Any], latest: Sample | None) -> float | None:
    """Transactions per second since the last sample (or the sampler's own rate)."""
    if latest is None:
        return None
    elapsed = row["at"] - latest.at
    if elapsed < 1.0:
        return latest.tps
    return max(0.0, (row["xacts"] - latest.xacts) / elapsed)


SHOW_POOLS_FIELDS = (
    "database",
    "user",
    "cl_active",
    "cl_waiting",
    "sv_active",
    "sv_idle",
    "sv_used",
    "maxwait",
    "pool_mode",
)


def read_pgbouncer_pools(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """SHOW POOLS on pgBouncer's admin console (simple query protocol only)."""
    cur = psycopg.ClientCursor(conn)
    cur.execute("SHOW POOLS")
    names = [d.name for d in cur.description or []]
    rows = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
    return [
        {k: r.get(k) for k in SHOW_POOLS_FIELDS} for r in rows if r.get("database") != "pgbouncer"
    ]


def read_pooler(access: StackAccess) -> list[dict[str, Any]] | None:
    """pgBouncer's pools; None when the stack has no pooler the API can reach."""
    dsn = access.pooler_dsn()
    if dsn is None:
        return None
    with connect(dsn, statement_timeout_ms=0) as conn:
        return read_pgbouncer_pools(conn)
