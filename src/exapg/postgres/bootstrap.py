"""Idempotent SQL that prepares a node: its database, extensions, the replication role and slots.

Every function takes an open connection and may run again on a node it already prepared.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql


def ensure_database(conn: psycopg.Connection, name: str) -> bool:
    """Create database `name` if missing (run it on `postgres`); True when created."""
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        return False
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def ensure_extensions(conn: psycopg.Connection, wanted: Iterable[str]) -> list[str]:
    """Create the wanted extensions that are available and missing; returns those created.

    Only when missing: on a worker in Citus's metadata, even IF NOT EXISTS DDL is refused."""
    present = {row[0] for row in conn.execute("SELECT extname FROM pg_extension").fetchall()}
    available = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions").fetchall()}
    created = []
    for extension in (e for e in wanted if e not in present and e in available):
        conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(extension)))
        created.append(extension)
    return created


def drop_extensions(conn: psycopg.Connection, names: Iterable[str]) -> list[str]:
    """Drop the named extensions that exist, in the order given; returns those dropped.

    Never CASCADE: an object that still depends on one (a columnar table, a view on a
    Citus function) makes the DROP fail instead of disappearing with it."""
    present = {row[0] for row in conn.execute("SELECT extname FROM pg_extension").fetchall()}
    dropped = []
    for extension in (e for e in names if e in present):
        conn.execute(sql.SQL("DROP EXTENSION {} RESTRICT").format(sql.Identifier(extension)))
        dropped.append(extension)
    return dropped


def ensure_replication_role(conn: psycopg.Connection, role: str, password: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} WITH LOGIN REPLICATION PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(role), sql.Literal(password)
        )
    )


def set_password(conn: psycopg.Connection, role: str, password: str) -> None:
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))


def ensure_slot(conn: psycopg.Connection, slot: str) -> None:
    """A physical replication slot for a standby, kept from its first connection on."""
    conn.execute(
        "SELECT pg_create_physical_replication_slot(%s) WHERE NOT EXISTS "
        "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)",
        (slot, slot),
    )


def drop_slot(conn: psycopg.Connection, slot: str) -> None:
    """Drop a slot nobody uses any more, or it keeps WAL for ever."""
    conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                 "WHERE slot_name = %s", (slot,))


def pending_restart(conn: psycopg.Connection) -> list[str]:
    """Settings changed in the files that only a restart applies (e.g. shared_buffers)."""
    return [r[0] for r in conn.execute("SELECT name FROM pg_settings WHERE pending_restart")]


def preload_libraries(conn: psycopg.Connection) -> tuple[list[str], list[str]]:
    """shared_preload_libraries as the running server loaded them, and as its configuration
    files give them now (read from the files as they are: no reload needed first)."""
    running = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    in_files = conn.execute(
        "SELECT setting FROM pg_file_settings WHERE name = 'shared_preload_libraries' "
        "ORDER BY seqno DESC LIMIT 1"
    ).fetchone()
    return _libraries(running[0] if running else ""), _libraries(in_files[0] if in_files else "")


def _libraries(setting: str) -> list[str]:
    return [name.strip().strip('"') for name in setting.split(",") if name.strip()]


def receiver_status(conn: psycopg.Connection) -> str:
    """A standby's WAL receiver: 'streaming' when it follows its primary, 'stopped' when none runs."""
    row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
    return str(row[0]) if row else "stopped"
