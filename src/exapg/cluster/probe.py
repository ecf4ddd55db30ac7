"""Node details for `exapg` and the management API: role, health, version, size, replication.

One SQL round trip per node, nodes inspected in parallel. Replication lag is measured
so that an idle primary shows zero lag: a standby that has replayed everything it
received is not behind, however long ago the last transaction was (the timestamp-only
lag query of the original specification grows forever on an idle primary).

The timeline of a primary is the one of the WAL it writes (the first 8 hex digits of the
current WAL file's name): pg_control_checkpoint() keeps the old one until the first
checkpoint after a promotion. A standby's is the one its WAL receiver streams, or its
last restartpoint's when it does not stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from exapg.cluster.health import standby_problems
from exapg.cluster.topology import Node, Topology
from exapg.errors import ExaPGError, first_line
from exapg.postgres.conn import Dsn, connect

Connector = Callable[[Node], AbstractContextManager[psycopg.Connection]]

NODE_SQL = """
SELECT
  current_setting('server_version') AS version,
  pg_is_in_recovery() AS in_recovery,
  CASE WHEN pg_is_in_recovery() THEN
    coalesce((SELECT received_tli FROM pg_stat_wal_receiver),
             (SELECT timeline_id FROM pg_control_checkpoint()))
  ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END
    AS timeline,
  pg_database_size(current_database()) AS size_bytes,
  extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS uptime_seconds,
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int
    AS connections,
  CASE WHEN NOT pg_is_in_recovery() THEN (
    SELECT coalesce(json_agg(json_build_object(
      'name', application_name, 'client_addr', host(client_addr), 'state', state,
      'sync_state', sync_state,
      'lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8,
      'lag_seconds', coalesce(extract(epoch FROM replay_lag)::float8, 0)
    ) ORDER BY application_name), '[]'::json)
    FROM pg_stat_replication) END AS downstream,
  CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() <> 'not paused' END
    AS replay_paused,
  (SELECT json_build_object('status', status, 'sender_host', sender_host,
                            'sender_port', sender_port, 'slot', slot_name)
     FROM pg_stat_wal_receiver) AS receiver,
  CASE WHEN pg_is_in_recovery() THEN
    pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 END
    AS standby_lag_bytes,
  CASE WHEN pg_is_in_recovery() THEN
    CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8
         ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END
    END AS standby_lag_seconds
"""


@dataclass(frozen=True)
class Downstream:
    """A standby streaming from this node (a row of pg_stat_replication)."""

    name: str
    client_addr: str | None
    state: str
    sync_state: str
    lag_bytes: float | None
    lag_seconds: float | None


@dataclass(frozen=True)
class Upstream:
    """This standby's WAL receiver and how far behind it is."""

    status: str | None
    sender_host: str | None
    sender_port: int | None
    slot: str | None
    lag_bytes: float | None
    lag_seconds: float | None
    replay_paused: bool | None = None


@dataclass(frozen=True)
class NodeReport:
    name: str
    role: str
    host: str
    port: int
    healthy: bool
    state: str  # "primary", "standby" or "down"
    version: str | None = None
    size_bytes: int | None = None
    uptime_seconds: float | None = None
    connections: int | None = None
    downstream: list[Downstream] = field(default_factory=list)
    upstream: Upstream | None = None
    error: str | None = None
    checked_at: float = 0.0
    timeline: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def report_from_row(node: Node, host: str, row: dict[str, Any]) -> NodeReport:
    """Build a report from the row of NODE_SQL (pure: no I/O)."""
    upstream = None
    if row["in_recovery"]:
        receiver = row["receiver"] or {}
        upstream = Upstream(
            receiver.get("status"),
            receiver.get("sender_host"),
            receiver.get("sender_port"),
            receiver.get("slot"),
            row["standby_lag_bytes"],
            row["standby_lag_seconds"],
            row["replay_paused"],
        )
    downstream = [Downstream(**item) for item in (row["downstream"] or [])]
    return NodeReport(
        name=node.name,
        role=str(node.role),
        host=host,
        port=node.port,
        healthy=True,
        state="standby" if row["in_recovery"] else "primary",
        version=row["version"],
        size_bytes=int(row["size_bytes"]),
        uptime_seconds=row["uptime_seconds"],
        connections=row["connections"],
        downstream=downstream,
        upstream=upstream,
        checked_at=time.time(),
        timeline=row.get("timeline"),
    )


def inspect_node(node: Node, conn: psycopg.Connection, host: str) -> NodeReport:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(NODE_SQL).fetchone()
    assert row is not None  # a SELECT without FROM always returns one row
    return report_from_row(node, host, row)


def down_report(node: Node, host: str, error: str) -> NodeReport:
    return NodeReport(
        name=node.name,
        role=str(node.role),
        host=host,
        port=node.port,
        healthy=False,
        state="down",
        error=error,
        checked_at=time.time(),
    )


def direct_connector(dsn_for: Callable[[str], Dsn], statement_timeout_ms: int = 5000) -> Connector:
    """Fresh connections (what the CLI uses); the API passes its pools instead."""

    @contextmanager
    def opened(node: Node) -> Iterator[psycopg.Connection]:
        with connect(dsn_for(node.name), statement_timeout_ms=statement_timeout_ms) as conn:
            yield conn

    return opened


def inspect_cluster(
    topology: Topology,
    connector: Connector,
    host_for: Callable[[Node], str] = lambda _: "127.0.0.1",
    nodes: list[Node] | None = None,
) -> list[NodeReport]:
    """Every node of `topology` (or just `nodes`), in topology order; unreachable nodes are
    reported as down, standbys that do not follow their primary as unhealthy (cluster/health.py)."""

    def one(node: Node) -> NodeReport:
        host = host_for(node)
        try:
            with connector(node) as conn:
                return inspect_node(node, conn, host)
        except (ExaPGError, psycopg.Error) as exc:
            return down_report(node, host, first_line(exc, last=True))

    chosen = topology.nodes if nodes is None else nodes
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(chosen)))) as pool:
        reports = list(pool.map(one, chosen))
    by_name = {node.name: node for node in chosen}
    return [judge(by_name[r.name], r) for r in _merge_lag(reports)]


def judge(node: Node, report: NodeReport) -> NodeReport:
    """A standby that answers but does not stream, replay or keep up is not healthy."""
    if not node.is_standby or report.state == "down":
        return report
    up = report.upstream
    problems = standby_problems(
        primary=node.primary or "its primary", in_recovery=up is not None,
        receiver_status=up.status if up else None, replay_paused=up.replay_paused if up else None,
        lag_bytes=up.lag_bytes if up else None, lag_seconds=up.lag_seconds if up else None,
    )
    if not problems:
        return report
    return NodeReport(**{**_shallow(report), "healthy": False, "error": "; ".join(problems)})


def _merge_lag(reports: list[NodeReport]) -> list[NodeReport]:
    """Prefer the primary's view of a standby's lag (sent WAL vs replayed) when it has one."""
    seen = {d.name: d for r in reports for d in r.downstream}
    merged = []
    for report in reports:
        link = seen.get(report.name)
        if report.upstream is not None and link is not None and link.lag_bytes is not None:
            caught_up = link.lag_bytes == 0  # replayed all the primary has written
            seconds = 0.0 if caught_up else report.upstream.lag_seconds
            upstream = Upstream(
                **{**asdict(report.upstream), "lag_bytes": link.lag_bytes, "lag_seconds": seconds}
            )
            report = NodeReport(**{**_shallow(report), "upstream": upstream})
        merged.append(report)
    return merged


def _shallow(report: NodeReport) -> dict[str, Any]:
    return {name: getattr(report, name) for name in report.__dataclass_fields__}
