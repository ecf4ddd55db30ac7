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
