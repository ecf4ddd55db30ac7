"""The audit log: who did what, when, from where, and whether it worked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

LOGIN = "login"
BAD_CREDENTIALS = "bad_credentials"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str | None
    action: str
    target: str | None
    success: bool
    client_addr: str | None
    detail: dict[str, Any]


def record(
    conn: psycopg.Connection,
    *,
    actor: str | None,
    action: str,
    target: str | None,
    success: bool,
    client_addr: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO exapg_mgmt.audit_log (actor, action, target, success, client_addr, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (actor, action, target, success, client_addr, Jsonb(detail or {})),
    )


def list_entries(
    conn: psycopg.Connection,
    *,
    limit: int,
    offset: int,
    action: str | None,
    actor: str | None,
) -> tuple[list[AuditEntry], int]:
    where = (
        "WHERE (%(action)s::text IS NULL OR action = %(action)s) "
        "AND (%(actor)s::text IS NULL OR actor = %(actor)s)"
    )
    params = {"action": action, "actor": actor, "limit": limit, "offset": offset}
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        rows = cur.execute(
            "SELECT id, at, actor, action, target, success, client_addr, detail "
            f"FROM exapg_mgmt.audit_log {where} ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
            params,
        ).fetchall()
    total = conn.execute(f"SELECT count(*) FROM exapg_mgmt.audit_log {where}", params).fetchone()
    return rows, int(total[0]) if total else 0


def failed_logins(
    conn: psycopg.Connection, *, username: str, client_addr: str | None, window_seconds: int
) -> tuple[int, int, float]:
    """Failed logins in the window: (for this user, from this address, seconds until the
    oldest of them leaves the window)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE target = %(user)s), "
        "count(*) FILTER (WHERE client_addr = %(addr)s), "
        "coalesce(extract(epoch FROM min(at) + make_interval(secs => %(window)s) - now()), 0) "
        "FROM exapg_mgmt.audit_log WHERE action = 'login' AND NOT success "
        "AND detail->>'reason' = 'bad_credentials' "
        "AND at > now() - make_interval(secs => %(window)s) "
        "AND (target = %(user)s OR client_addr = %(addr)s)",
        {"user": username, "addr": client_addr, "window": window_seconds},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), float(row[2])
