"""The record of planned role changes: every switchover or failover ExaPG carries out.

A promotion starts a new timeline. Whether that was planned cannot be read from
PostgreSQL, so ExaPG's own switchover and failover write one row into
`exapg.role_changes` on the new primary, right after promoting it. The row replicates
to the standbys like any other; the replication exporter serves the newest one as
`pg_replication_role_change_timeline`, and the alert rules call a timeline change with a
matching row planned (PrimaryTimelineChangedPlanned, informational) and one without it
unplanned (PrimaryTimelineChanged). See docs/exporter.md, *Roles*.

The table lives in the database the exporter watches (POSTGRES_DB).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import psycopg
from psycopg.rows import dict_row

from exapg.errors import ExaPGError, InvalidParameterError, first_line

# exapg.exporter.queries.ROLE_CHANGES_TABLE names the same table (the exporter's image
# carries only its own package); tests/unit/test_role_change_record.py keeps the two equal.
TABLE = "exapg.role_changes"

SETUP = (
    "CREATE SCHEMA IF NOT EXISTS exapg",
    "CREATE TABLE IF NOT EXISTS exapg.role_changes ("
    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " at timestamptz NOT NULL DEFAULT now(),"
    " kind text NOT NULL CHECK (kind IN ('switchover', 'failover')),"
    " from_server text NOT NULL,"
    " to_server text NOT NULL,"
    " timeline integer NOT NULL CHECK (timeline > 0))",
)

# The timeline of the WAL being written: the first 8 hex digits of its file name.
# pg_control_checkpoint() would still show the old one until the first checkpoint after
# the promotion.
_STATE = """
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN NOT pg_is_in_recovery() THEN
         ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
       END AS timeline
"""

_INSERT = (
    "INSERT INTO exapg.role_changes (kind, from_server, to_server, timeline) "
    "VALUES (%s, %s, %s, %s) RETURNING id, at, kind, from_server, to_server, timeline"
)

_LATEST = (
    "SELECT id, at, kind, from_server, to_server, timeline FROM exapg.role_changes "
    "ORDER BY id DESC LIMIT %s"
)


class RoleChangeKind(StrEnum):
    SWITCHOVER = "switchover"  # both servers up: the old primary becomes a standby
    FAILOVER = "failover"  # the old primary is lost: a standby takes over


@dataclass(frozen=True)
class RoleChange:
    id: int
    at: datetime
    kind: RoleChangeKind
    from_server: str
    to_server: str
    timeline: int


def record_role_change(
    conn: psycopg.Connection, *, kind: RoleChangeKind | str, from_server: str, to_server: str,
    timeline: int | None = None,
) -> RoleChange:
    """Record a planned switchover or failover on `conn`, the new primary, after promoting it.

    `from_server` and `to_server` are the servers' names as the exporter labels them
    (its `server` label). `timeline` defaults to the one the server now writes, which is
    the one the promotion started. Raises InvalidParameterError for an unknown kind,
    ExaPGError when the server is still in recovery (not promoted yet) or the row cannot
    be written.
    """
    change_kind = _kind(kind)
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            state = cur.execute(_STATE).fetchone()
            if state is None or state["in_recovery"]:
                raise ExaPGError(f"cannot record the {change_kind} to {to_server}: the server is "
                                 "still in recovery; promote it first")
            # A new primary may have lost its synchronous standby with the old primary.
            cur.execute("SET LOCAL synchronous_commit = local")
            for statement in SETUP:
                cur.execute(statement)
            row = cur.execute(_INSERT, (str(change_kind), from_server, to_server,
                                        timeline or state["timeline"])).fetchone()
    except psycopg.Error as exc:
        raise ExaPGError(f"cannot record the {change_kind} to {to_server}: {first_line(exc)}") from exc
    assert row is not None  # INSERT ... RETURNING one row
    return _change(row)


def latest_role_changes(conn: psycopg.Connection, limit: int = 1) -> list[RoleChange]:
    """The newest recorded role changes, newest first; [] when none was ever recorded.
    Works on a standby too (the table replicates)."""
    with conn.cursor(row_factory=dict_row) as cur:
        exists = cur.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (TABLE,)).fetchone()
        if not exists or not exists["found"]:
            return []
        return [_change(row) for row in cur.execute(_LATEST, (limit,)).fetchall()]


def _kind(kind: RoleChangeKind | str) -> RoleChangeKind:
    try:
        return RoleChangeKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in RoleChangeKind)
        raise InvalidParameterError(f"unknown role change {kind!r}: expected {allowed}") from None


def _change(row: dict) -> RoleChange:
    return RoleChange(int(row["id"]), row["at"], RoleChangeKind(row["kind"]), row["from_server"],
                      row["to_server"], int(row["timeline"]))
