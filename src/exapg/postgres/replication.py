"""SQL of role changes: a node's timeline and recovery, replay progress, slots and
restore_command. (The record of switchovers and failovers is cluster/roles.py's.)

Every function takes an open connection (autocommit).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

# The primary's timeline is the one it writes WAL on (the first 8 hex digits of the name of
# its current WAL file); a standby's is the one it receives, else its last restartpoint's.
TIMELINE_SQL = """
SELECT CASE WHEN pg_is_in_recovery()
  THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver WHERE received_tli > 0),
                (SELECT timeline_id FROM pg_control_checkpoint()))
  ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END
"""

def timeline(conn: psycopg.Connection) -> int | None:
    row = conn.execute(TIMELINE_SQL).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def in_recovery(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def replayed_past(conn: psycopg.Connection, lsn: str) -> bool:
    """True once a standby has replayed the WAL record that starts at `lsn` (replay
    positions are record ends, so strictly past it)."""
    row = conn.execute("SELECT coalesce(pg_last_wal_replay_lsn() > %s::pg_lsn, false)", (lsn,)).fetchone()
    return bool(row and row[0])


def checkpoint(conn: psycopg.Connection) -> None:
    """After a promotion: the control file then names the new timeline (pg_rewind reads it)."""
    conn.execute("CHECKPOINT")


def drop_slot_if_present(conn: psycopg.Connection, slot: str) -> bool:
    """Drop an inactive slot (a demoted primary keeps the one it fed its standby through)."""
    row = conn.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE slot_name = %s AND NOT active", (slot,)).fetchone()
    return row is not None


def set_restore_command(conn: psycopg.Connection, command: str | None) -> None:
    """Set (or with None, reset) a standby's restore_command and reload: PostgreSQL 14+
    applies it without a restart."""
    if command is None:
        conn.execute("ALTER SYSTEM RESET restore_command")
    else:
        conn.execute(sql.SQL("ALTER SYSTEM SET restore_command = {}").format(sql.Literal(command)))
    conn.execute("SELECT pg_reload_conf()")
