"""Logging in: rate limit, password check, token, audit record.

Failed logins are limited per (user name, client address) pair and per address, never
per user name alone: a per-name limit lets anyone lock `admin` out with five bad tries.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from exapg.api.context import AppContext
from exapg.api.crud import audit, users
from exapg.api.errors import NotAuthenticatedError, RateLimitedError
from exapg.api.security import TokenClaims, UserRole, issue_token, verify_password

FAILURE_WINDOW = 15 * 60
MAX_FAILURES_PER_USER_AND_ADDRESS = 5
MAX_FAILURES_PER_ADDRESS = 20


@dataclass(frozen=True)
class Login:
    token: str
    claims: TokenClaims
    user: users.User


def login(ctx: AppContext, *, username: str, password: str, client_addr: str | None) -> Login:
    with ctx.pools.connection() as conn:
        _check_rate(conn, username, client_addr)
        found = users.credentials(conn, username=username)
        valid = verify_password(found.password_hash if found else None, password)
        if not valid or found is None or not found.enabled:
            _refused(conn, username, client_addr, audit.BAD_CREDENTIALS if not valid else "disabled")
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
        ctx.config.secret_key,
        username=username,
        role=UserRole(found.role),
        uid=found.id,
        generation=found.token_version,
        ttl=ctx.config.token_ttl,
    )
    return Login(token, claims, user)


def _check_rate(conn: psycopg.Connection, username: str, client_addr: str | None) -> None:
    failures = _failed_logins(conn, username=username, client_addr=client_addr)
    if failures.retry_after is None:
        return
    _refused(conn, username, client_addr, "rate_limited")
    wait = int(failures.retry_after) + 1
    raise RateLimitedError(f"too many failed logins: try again in {wait} s", wait)


def _refused(conn: psycopg.Connection, username: str, client_addr: str | None, reason: str) -> None:
    audit.record(conn, actor=username, action=audit.LOGIN, target=username, success=False,
                 client_addr=client_addr, detail={"reason": reason})


@dataclass(frozen=True)
class _Failures:
    by_pair: int  # this user name from this address
    by_address: int  # any user name from this address
    pair_expires_in: float  # seconds until the oldest of each set leaves the window
    address_expires_in: float

    @property
    def retry_after(self) -> float | None:
        """Seconds until the limits that are reached no longer hold; None when none is."""
        waits = []
        if self.by_pair >= MAX_FAILURES_PER_USER_AND_ADDRESS:
            waits.append(self.pair_expires_in)
        if self.by_address >= MAX_FAILURES_PER_ADDRESS:
            waits.append(self.address_expires_in)
        return max(waits) if waits else None


def _failed_logins(conn: psycopg.Connection, *, username: str, client_addr: str | None) -> _Failures:
    """Bad passwords from this address within the window, read from the audit log (so the
    limit holds across restarts and API processes). Requests without an address share one
    bucket rather than escaping the limit."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE target = %(user)s), count(*), "
        "coalesce(extract(epoch FROM min(at) FILTER (WHERE target = %(user)s) "
        "  + make_interval(secs => %(window)s) - now()), 0), "
        "coalesce(extract(epoch FROM min(at) + make_interval(secs => %(window)s) - now()), 0) "
        "FROM exapg_mgmt.audit_log WHERE action = 'login' AND NOT success "
        "AND detail->>'reason' = %(reason)s "
        "AND at > now() - make_interval(secs => %(window)s) "
        "AND client_addr IS NOT DISTINCT FROM %(addr)s",
        {"user": username, "addr": client_addr, "window": FAILURE_WINDOW, "reason": audit.BAD_CREDENTIALS},
    ).fetchone()
    assert row is not None
    return _Failures(int(row[0]), int(row[1]), float(row[2]), float(row[3]))
