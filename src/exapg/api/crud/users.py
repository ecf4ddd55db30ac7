"""Management users, stored on the coordinator in the `exapg_mgmt` schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from exapg.api.core.errors import ConflictError, NotFoundError
from exapg.api.core.security import UserRole

COLUMNS = "username, role, enabled, created_at, updated_at, last_login_at"


@dataclass(frozen=True)
class User:
    username: str
    role: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


def list_users(conn: psycopg.Connection) -> list[User]:
    with conn.cursor(row_factory=class_row(User)) as cur:
        return cur.execute(f"SELECT {COLUMNS} FROM exapg_mgmt.users ORDER BY username").fetchall()


def get_user(conn: psycopg.Connection, *, username: str) -> User:
    with conn.cursor(row_factory=class_row(User)) as cur:
        row = cur.execute(
            f"SELECT {COLUMNS} FROM exapg_mgmt.users WHERE username = %s", (username,)
        ).fetchone()
    if row is None:
        raise NotFoundError(f"no user named {username!r}")
    return row


@dataclass(frozen=True)
class Credentials:
    password_hash: str
    role: str
    enabled: bool
    id: int
    token_version: int  # raised by every password change and disable: ends older sessions


CREDENTIALS_SQL = (
    "SELECT password_hash, role, enabled, id, token_version FROM exapg_mgmt.users "
    "WHERE username = %s"
)


def credentials(conn: psycopg.Connection, *, username: str) -> Credentials | None:
    with conn.cursor(row_factory=class_row(Credentials)) as cur:
        return cur.execute(CREDENTIALS_SQL, (username,)).fetchone()


async def acredentials(conn: psycopg.AsyncConnection, *, username: str) -> Credentials | None:
    async with conn.cursor(row_factory=class_row(Credentials)) as cur:
        await cur.execute(CREDENTIALS_SQL, (username,))
        return await cur.fetchone()


def create_user(conn: psycopg.Connection, *, username: str, role: UserRole, hashed: str) -> User:
    with conn.cursor(row_factory=class_row(User)) as cur:
        try:
            row = cur.execute(
                "INSERT INTO exapg_mgmt.users (username, role, password_hash) VALUES (%s, %s, %s) "
                f"ON CONFLICT (username) DO NOTHING RETURNING {COLUMNS}",
                (username, str(role), hashed),
            ).fetchone()
        except psycopg.errors.CheckViolation:
            raise ConflictError(f"user name {username!r} is not allowed") from None
    if row is None:
        raise ConflictError(f"a user named {username!r} already exists")
    return row


def update_user(
    conn: psycopg.Connection, *, username: str, role: UserRole | None, enabled: bool | None
) -> User:
    """Change role and/or enabled; never leaves the stack without an enabled admin."""
    with conn.transaction():
        _lock(conn)
        current = get_user(conn, username=username)
        demoted = current.role == UserRole.ADMIN and (
            (role is not None and role != UserRole.ADMIN) or enabled is False
        )
        if demoted:
            _keep_an_admin(conn, username)
        with conn.cursor(row_factory=class_row(User)) as cur:
            # a disable ends the user's sessions for good: enabling again does not revive them
            row = cur.execute(
                "UPDATE exapg_mgmt.users SET role = coalesce(%(role)s, role), "
                "enabled = coalesce(%(enabled)s, enabled), updated_at = now(), "
                "token_version = token_version "
                "  + CASE WHEN %(enabled)s::boolean IS FALSE AND enabled THEN 1 ELSE 0 END "
                f"WHERE username = %(username)s RETURNING {COLUMNS}",
                {"role": str(role) if role else None, "enabled": enabled, "username": username},
            ).fetchone()
    assert row is not None
    return row


def set_password(conn: psycopg.Connection, *, username: str, hashed: str) -> int:
    """A new password, which ends every session of the user; the new token version."""
    row = conn.execute(
        "UPDATE exapg_mgmt.users SET password_hash = %s, updated_at = now(), "
        "token_version = token_version + 1 WHERE username = %s RETURNING token_version",
        (hashed, username),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no user named {username!r}")
    return int(row[0])


def delete_user(conn: psycopg.Connection, *, username: str) -> None:
    with conn.transaction():
        _lock(conn)
        current = get_user(conn, username=username)
        if current.role == UserRole.ADMIN and current.enabled:
            _keep_an_admin(conn, username)
        conn.execute("DELETE FROM exapg_mgmt.users WHERE username = %s", (username,))


def record_login(conn: psycopg.Connection, *, username: str) -> None:
    conn.execute(
        "UPDATE exapg_mgmt.users SET last_login_at = now() WHERE username = %s", (username,)
    )


@dataclass(frozen=True)
class UserState:
    """What a session check needs of its user (by id: a name may be given again)."""

    role: str
    enabled: bool
    token_version: int


SESSION_SQL = (
    "SELECT u.role, u.enabled, u.token_version, "
    "EXISTS (SELECT 1 FROM exapg_mgmt.revoked_tokens r WHERE r.jti = %s) "
    "FROM exapg_mgmt.users u WHERE u.id = %s"
)


async def session_state(
    conn: psycopg.AsyncConnection, *, uid: int, jti: str
) -> tuple[UserState | None, bool]:
    """(the user's state or None when it is gone, whether the token was logged out), in
    one round trip."""
    cur = await conn.execute(SESSION_SQL, (jti, uid))
    row = await cur.fetchone()
    if row is None:
        return None, False
    return UserState(row[0], row[1], int(row[2])), bool(row[3])


def count_users(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM exapg_mgmt.users").fetchone()
    return int(row[0]) if row else 0


def _lock(conn: psycopg.Connection) -> None:
    """Serialize admin-count checks so two requests cannot remove the last two admins."""
    conn.execute("LOCK TABLE exapg_mgmt.users IN SHARE ROW EXCLUSIVE MODE")


def _keep_an_admin(conn: psycopg.Connection, username: str) -> None:
    row = conn.execute(
        "SELECT count(*) FROM exapg_mgmt.users WHERE role = 'admin' AND enabled AND username <> %s",
        (username,),
    ).fetchone()
    if not row or row[0] == 0:
        raise ConflictError(f"{username!r} is the last enabled admin: make another admin first")


def revoke_token(conn: psycopg.Connection, *, jti: str, expires_at: int) -> None:
    conn.execute(
        "INSERT INTO exapg_mgmt.revoked_tokens (jti, expires_at) VALUES (%s, to_timestamp(%s)) "
        "ON CONFLICT (jti) DO NOTHING",
        (jti, expires_at),
    )
    conn.execute("DELETE FROM exapg_mgmt.revoked_tokens WHERE expires_at < now()")
