"""Logging in: rate limit, password check, token, audit record."""

from __future__ import annotations

from dataclasses import dataclass

from exapg.api.context import AppContext
from exapg.api.crud import audit, users
from exapg.api.errors import NotAuthenticatedError, RateLimitedError
from exapg.api.security import TokenClaims, UserRole, issue_token, verify_password

FAILURE_WINDOW = 15 * 60
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 20


@dataclass(frozen=True)
class Login:
    token: str
    claims: TokenClaims
    user: users.User


def login(ctx: AppContext, *, username: str, password: str, client_addr: str | None) -> Login:
    with ctx.pools.connection() as conn:
        _check_rate(conn, username, client_addr)
        found = users.password_hash(conn, username=username)
        valid = verify_password(found[0] if found else None, password)
        if not valid or found is None or not found[2]:
            reason = audit.BAD_CREDENTIALS if not valid else "disabled"
            audit.record(
                conn,
                actor=username,
                action=audit.LOGIN,
                target=username,
                success=False,
                client_addr=client_addr,
                detail={"reason": reason},
            )
            raise NotAuthenticatedError("wrong user name or password, or the user is disabled")
        users.record_login(conn, username=username)
        audit.record(
            conn,
            actor=username,
            action=audit.LOGIN,
            target=username,
            success=True,
            client_addr=client_addr,
        )
        user = users.get_user(conn, username=username)
    token, claims = issue_token(
        ctx.config.secret_key, username=username, role=UserRole(found[1]), ttl=ctx.config.token_ttl
    )
    return Login(token, claims, user)


def _check_rate(conn, username: str, client_addr: str | None) -> None:
    by_user, by_addr, retry_after = audit.failed_logins(
        conn, username=username, client_addr=client_addr, window_seconds=FAILURE_WINDOW
    )
    if by_user >= MAX_FAILURES_PER_USER or by_addr >= MAX_FAILURES_PER_ADDRESS:
        audit.record(
            conn,
            actor=username,
            action=audit.LOGIN,
            target=username,
            success=False,
            client_addr=client_addr,
            detail={"reason": "rate_limited"},
        )
        raise RateLimitedError(
            f"too many failed logins: try again in {int(retry_after) + 1} s", int(retry_after) + 1
        )
