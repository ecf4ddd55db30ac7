"""SQL on the coordinator: the backups table the metrics read, and restore points.

`exapg_backup.backups` mirrors what pgBackRest's repository holds; every `exapg backup`,
`exapg restore` and `exapg up` writes it anew from `pgbackrest info`, so a restore (which
brings back an older copy of the table) or an expired backup never leaves it stale.
postgres_exporter reads it (monitoring/postgres_exporter/queries.yaml, `exapg_backup_*`).
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from exapg.backup.pgbackrest import StanzaInfo

SCHEMA = "exapg_backup"
DDL = (
    "CREATE SCHEMA IF NOT EXISTS exapg_backup",
    """CREATE TABLE IF NOT EXISTS exapg_backup.backups (
        stanza text NOT NULL,
        label text NOT NULL,
        type text NOT NULL,
        started_at timestamptz NOT NULL,
        stopped_at timestamptz NOT NULL,
        size_bytes bigint NOT NULL,
        repository_bytes bigint NOT NULL,
        wal_start text NOT NULL,
        wal_stop text NOT NULL,
        PRIMARY KEY (stanza, label))""",
)
INSERT = (
    "INSERT INTO exapg_backup.backups (stanza, label, type, started_at, stopped_at, size_bytes, "
    "repository_bytes, wal_start, wal_stop) VALUES (%s, %s, %s, to_timestamp(%s), to_timestamp(%s), %s, %s, %s, %s)"
)


def write(conn: psycopg.Connection, stanzas: Iterable[StanzaInfo]) -> int:
    """Replace the table's rows by the repository's backups (one transaction); returns how many."""
    rows = [(s.name, b.label, b.type, b.started, b.stopped, b.size, b.repository_size, b.wal_start, b.wal_stop)
            for s in stanzas for b in s.backups if not b.error]
    with conn.transaction():
        if conn.execute("SELECT to_regclass('exapg_backup.backups')").fetchone() == (None,):
            # A table of the coordinator alone: Citus must not send this DDL to the workers
            # (one of them down would refuse it). Harmless where Citus is not loaded.
            conn.execute("SELECT set_config('citus.enable_ddl_propagation', 'off', true)")
            for statement in DDL:
                conn.execute(statement)
        conn.execute("DELETE FROM exapg_backup.backups")
        with conn.cursor() as cur:
            cur.executemany(INSERT, rows)
    return len(rows)


def create_restore_point(conn: psycopg.Connection, name: str, *, citus: bool) -> str:
    """A named point to recover to; with Citus, one consistent across every node (writes are
    blocked for its instant). Returns the coordinator's LSN of it."""
    function = "citus_create_restore_point" if citus else "pg_create_restore_point"
    row = conn.execute(f"SELECT {function}(%s)::text", (name,)).fetchone()
    return str(row[0]) if row else ""


def switch_wal(conn: psycopg.Connection) -> str:
    """Close the current WAL segment so the archiver ships it now; returns the LSN."""
    row = conn.execute("SELECT pg_switch_wal()::text").fetchone()
    return str(row[0]) if row else ""


def recovery_done(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def archiving(conn: psycopg.Connection) -> tuple[str, float | None]:
    """archive_mode as running, and when the archiver last shipped a segment (UNIX time)."""
    row = conn.execute(
        "SELECT current_setting('archive_mode'), extract(epoch FROM last_archived_time)::float8 "
        "FROM pg_stat_archiver").fetchone()
    return (str(row[0]), float(row[1]) if row and row[1] is not None else None) if row else ("off", None)


RECOVERY_SETTINGS = ("restore_command", "recovery_target", "recovery_target_time", "recovery_target_lsn",
                     "recovery_target_name", "recovery_target_xid", "recovery_target_action",
                     "recovery_target_inclusive", "recovery_target_timeline")


def forget_recovery_settings(conn: psycopg.Connection) -> None:
    """Remove what pgBackRest's restore wrote into postgresql.auto.conf. A standby cloned from
    the node would copy it and stop (and promote) at the old target; and its restore_command
    names the restored node's data directory."""
    for name in RECOVERY_SETTINGS:
        conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
    conn.execute("SELECT pg_reload_conf()")


def where_recovery_ended(conn: psycopg.Connection) -> tuple[str, str | None, int]:
    """After a restore: the last replayed LSN, the last replayed commit's time, the timeline."""
    row = conn.execute(
        "SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()::text, "
        "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int").fetchone()
    if row is None:
        return "", None, 0
    return str(row[0] or ""), (str(row[1]) if row[1] is not None else None), int(row[2] or 0)
