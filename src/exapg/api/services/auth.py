"""Logging in: limits, password check, token, audit record.

Limits that an attacker cannot turn against the users they protect (within 15 minutes):

- per user name, from anywhere: after 5 failures, one password check per delay (1 s,
  doubling with each further failure, at most 60 s); other tries answer 429 at once. Not
  per address: the local backend sees every client as 127.0.0.1, and a flood can rotate
  source addresses.
- a login from a known device (a device token this user got at an earlier successful
  login) skips that throttle, until the device has 5 failures of its own: a flood against
  `admin` does not keep the real admin out.
- per address, only where addresses tell clients apart (not loopback, not unknown): 20
  failures lock the address for unknown devices.

Every attempt is reserved before its password is checked (crud.attempts), and checks run
in their own threads, few at a time (hashing.PasswordChecks), holding no pooled connection.
A refused login (429) is answered after REFUSAL_DELAY, so a flood's clients do not come back
faster than the API can say no to them.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass

import psycopg
from fastapi.concurrency import run_in_threadpool

from exapg.api.context import AppContext
from exapg.api.core.errors import NotAuthenticatedError, RateLimitedError
from exapg.api.core.security import (
    TokenClaims,
    UserRole,
    device_of,
    issue_device_token,
    issue_token,
)
from exapg.api.crud import attempts, audit, users
from exapg.api.services import users as manage
from exapg.api.services.audit import Auditor
from exapg.api.services.hashing import Lane
from exapg.api.services.login_gate import message as _message

FAILURE_WINDOW = 15 * 60
FREE_FAILURES = 5
MAX_DELAY = 60.0
MAX_FAILURES_PER_DEVICE = 5
MAX_FAILURES_PER_ADDRESS = 20
REFUSAL_DELAY = 1.0  # seconds a refused login waits for its answer (costs nothing meanwhile)
PASSWORD_CHANGE = "password_change"  # noqa: S105 - an audit action, not a secret


@dataclass(frozen=True)
class Login:
    token: str
    claims: TokenClaims
    user: users.User
    device_token: str


@dataclass(frozen=True)
class Refusal:
    key: str  # what is limited: "u:<name>" or "a:<address>"
    wait: float
    message: str


async def login(
    ctx: AppContext, *, username: str, password: str, client_addr: str | None, device_token: str | None
) -> Login:
    device = device_of(ctx.config.secret_key, device_token, username=username)
    found = await checked(ctx, username=username, password=password, client_addr=client_addr,
                          device=device)
    user = await run_in_threadpool(_logged_in, ctx, username, client_addr)
    return _session(ctx, user, found, device_token if device else None)


async def checked(
    ctx: AppContext,
    *,
    username: str,
    password: str,
    client_addr: str | None,
    device: str | None = None,
    action: str = audit.LOGIN,
) -> users.Credentials:
    """The credentials of an enabled user whose password this is, under the limits above:
    every password check of the API goes through here (a wrong current password when
    changing it counts like a failed login). NotAuthenticatedError or RateLimitedError."""
    try:
        return await _check(ctx, username, password, client_addr, device, action)
    except RateLimitedError:
        # Decided at once, answered late: a flood's clients wait instead of coming back
        # thousands of times a second for the event loop that serves everyone else.
        await asyncio.sleep(REFUSAL_DELAY)
        raise


async def _check(
    ctx: AppContext, username: str, password: str, client_addr: str | None, device: str | None,
    action: str,
) -> users.Credentials:
    address = client_addr if distinct_address(client_addr) else None
    if device is None:
        ctx.login_gate.check([f"u:{username}"] + ([f"a:{address}"] if address else []))
    with ctx.password_checks.slot(Lane.KNOWN if device else Lane.UNKNOWN):
        attempt, found = await run_in_threadpool(
            _reserve, ctx, username, client_addr, address, device, action
        )
        valid = await ctx.password_checks.verify(found.password_hash if found else None, password)
        ok = valid and found is not None and found.enabled
        reason = None if ok else audit.BAD_CREDENTIALS if not valid else "disabled"
        await run_in_threadpool(_finish, ctx, attempt, username, client_addr, action, reason)
    if not ok or found is None:
        raise NotAuthenticatedError("wrong user name or password, or the user is disabled")
    return found


def distinct_address(client_addr: str | None) -> bool:
    """Whether an address tells clients apart: loopback is everyone on this machine."""
    try:
        return client_addr is not None and not ipaddress.ip_address(client_addr).is_loopback
    except ValueError:
        return False


def _session(
    ctx: AppContext, user: users.User, found: users.Credentials, device_token: str | None
) -> Login:
    token, claims = issue_token(
        ctx.config.secret_key,
        username=user.username,
        role=UserRole(found.role),
        uid=found.id,
        generation=found.token_version,
        ttl=ctx.config.token_ttl,
    )
    if device_token is None:
        device_token = issue_device_token(ctx.config.secret_key, username=user.username)[0]
    return Login(token, claims, user, device_token)


def _reserve(
    ctx: AppContext, username: str, client_addr: str | None, address: str | None,
    device: str | None, action: str,
) -> tuple[int, users.Credentials | None]:
    """The attempt reserved (or RateLimitedError), and the user's credentials."""

    def decide(failures: attempts.Failures) -> Refusal | None:
        return _refusal(failures, username=username, address=address, device=device)

    with ctx.pools.connection() as conn:
        attempt, refusal = attempts.reserve(
            conn, username=username, client_addr=address, device=device,
            window=FAILURE_WINDOW, decide=decide,
        )
        if refusal is None and attempt is not None:
            return attempt, users.credentials(conn, username=username)
        _refused(ctx, conn, username, client_addr, action, "rate_limited")
    assert refusal is not None
    ctx.login_gate.close(refusal.key, refusal.wait)
    raise RateLimitedError(refusal.message, int(refusal.wait) + 1)


def _refusal(
    f: attempts.Failures, *, username: str, address: str | None, device: str | None
) -> Refusal | None:
    if device is not None and f.by_device < MAX_FAILURES_PER_DEVICE:
        return None
    if address is not None and f.by_address >= MAX_FAILURES_PER_ADDRESS:
        key = f"a:{address}"
        return Refusal(key, max(1.0, f.address_expires_in), _message(key, f.address_expires_in))
    if f.by_user < FREE_FAILURES or f.since_last is None:
        return None
    # counted from the user's last failure from anywhere, a device's too: a stolen device
    # token with its own failures used up gets no more checks than a stranger
    delay = min(MAX_DELAY, 2.0 ** (f.by_user - FREE_FAILURES))
    wait = delay - f.since_last
    key = f"u:{username}"
    return Refusal(key, wait, _message(key, wait)) if wait > 0 else None


def _finish(
    ctx: AppContext, attempt: int, username: str, client_addr: str | None, action: str,
    failure: str | None,
) -> None:
    """The attempt's outcome recorded; a failure audited (None: the password was right)."""
    with ctx.pools.connection() as conn:
        attempts.finish(conn, attempt=attempt, ok=failure is None)
        if failure is not None:
            _refused(ctx, conn, username, client_addr, action, failure)


def _logged_in(ctx: AppContext, username: str, client_addr: str | None) -> users.User:
    with ctx.pools.connection() as conn:
        users.record_login(conn, username=username)
        _auditor(ctx, username, client_addr).record(conn, audit.LOGIN, target=username, success=True)
        return users.get_user(conn, username=username)


def _refused(
    ctx: AppContext, conn: psycopg.Connection, username: str, client_addr: str | None, action: str,
    reason: str,
) -> None:
    """A refused check, written with the attempt it refused. Refusals answered from memory
    (the gate, a full lane) are not written: a flood must not reach the database."""
    _auditor(ctx, username, client_addr).record(
        conn, action, target=username, success=False, detail={"reason": reason}
    )


def _auditor(ctx: AppContext, username: str, client_addr: str | None) -> Auditor:
    """The claimed user is the actor of a login (no session proves who it is yet)."""
    return Auditor(ctx.pools, username, client_addr)


def new_password(
    ctx: AppContext, *, found: users.Credentials, username: str, password: str
) -> tuple[str, TokenClaims, users.User]:
    """Set a password checked by `checked`; every other session of the user ends. The token
    for this session, its claims and the user."""
    generation = manage.set_password(ctx.pools, ctx.sessions, username=username, password=password)
    with ctx.pools.connection() as conn:
        account = users.get_user(conn, username=username)
    token, claims = issue_token(
        ctx.config.secret_key,
        username=username,
        role=UserRole(account.role),
        uid=found.id,
        generation=generation,
        ttl=ctx.config.token_ttl,
    )
    return token, claims, account


def logout(ctx: AppContext, *, jti: str, expires_at: int) -> None:
    with ctx.pools.connection() as conn:
        users.revoke_token(conn, jti=jti, expires_at=expires_at)
    ctx.sessions.forget_token(jti)
