"""Managing users: the password hashed here, the user's cached sessions dropped on change."""

from __future__ import annotations

from exapg.api.core.db import Pools
from exapg.api.core.security import UserRole, hash_password
from exapg.api.crud import users
from exapg.api.services.shared import SessionCache


def create(pools: Pools, *, username: str, role: UserRole, password: str) -> users.User:
    hashed = hash_password(password)
    with pools.connection() as conn:
        return users.create_user(conn, username=username, role=role, hashed=hashed)


def update(
    pools: Pools, sessions: SessionCache, *, username: str, role: UserRole | None, enabled: bool | None
) -> users.User:
    with pools.connection() as conn:
        user = users.update_user(conn, username=username, role=role, enabled=enabled)
    sessions.forget_user(username)
    return user


def set_password(pools: Pools, sessions: SessionCache, *, username: str, password: str) -> int:
    """A new password, which ends every session of the user; the new token version."""
    hashed = hash_password(password)
    with pools.connection() as conn:
        generation = users.set_password(conn, username=username, hashed=hashed)
    sessions.forget_user(username)
    return generation


def delete(pools: Pools, sessions: SessionCache, *, username: str) -> None:
    with pools.connection() as conn:
        users.delete_user(conn, username=username)
    sessions.forget_user(username)
