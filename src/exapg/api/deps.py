"""FastAPI dependencies: the app context, the current user, role checks, the auditor.

All async: a sync dependency costs a trip through the thread pool on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from exapg.api.context import AppContext
from exapg.api.core.errors import ForbiddenError, NotAuthenticatedError, UnavailableError
from exapg.api.core.security import TokenClaims, UserRole, decode_token
from exapg.api.crud import users
from exapg.api.services.audit import Auditor
from exapg.api.services.shared import Check

bearer = HTTPBearer(auto_error=False, description="The access token from POST /api/auth/login")


async def get_context(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[AppContext, Depends(get_context)]


async def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


ClientAddr = Annotated[str | None, Depends(client_addr)]


SESSION_WAIT = 1.0  # seconds a token check waits for the coordinator before trusting the cache
READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    username: str
    role: UserRole
    jti: str
    expires_at: int
    read_only: bool = False  # the coordinator is down: the session was checked without it


async def current_user(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The token's user as the database knows it: a disabled, deleted or re-created user, a
    new password, a changed role or a logged-out token takes effect at once in this process
    (within EXAPG_SESSION_TTL in others). While the coordinator is down the last state seen
    answers, and only for reads."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticatedError()
    claims = decode_token(ctx.config.secret_key, credentials.credentials)
    if claims is None:
        raise NotAuthenticatedError("invalid or expired token: log in again")
    state, read_only = await _session(ctx, claims)
    if read_only and request.method not in READS:
        raise UnavailableError(
            "the coordinator is down: the management UI is read-only until it is back"
        )
    return Principal(claims.username, UserRole(state.role), claims.jti, claims.expires_at, read_only)


async def _session(ctx: AppContext, claims: TokenClaims) -> tuple[users.UserState, bool]:
    """The user's live state and whether it comes from the cache of an unreachable coordinator."""

    async def load() -> Check:
        async with ctx.pools.aconnection(timeout=SESSION_WAIT) as conn:
            return await users.session_state(conn, uid=claims.uid, jti=claims.jti)

    read_only = False
    try:
        state, revoked = await ctx.sessions.check(claims.jti, claims.username, claims.uid, load)
    except UnavailableError:
        read_only = True
        claimed = users.UserState(str(claims.role), True, claims.generation)
        state, revoked = ctx.sessions.last_known(claims.jti, claims.uid, claimed)
    if state is None or not state.enabled or revoked:
        raise NotAuthenticatedError("session ended (logged out, user disabled or deleted)")
    if state.token_version != claims.generation:
        raise NotAuthenticatedError("session ended (new password, or the user was disabled): log in again")
    return state, read_only


def require(role: UserRole):
    async def check(user: Annotated[Principal, Depends(current_user)]) -> Principal:
        if not user.role.allows(role):
            raise ForbiddenError(f"this needs the {role} role (you are {user.role})")
        return user

    return check


CurrentUser = Annotated[Principal, Depends(current_user)]
Viewer = Annotated[Principal, Depends(require(UserRole.VIEWER))]
Operator = Annotated[Principal, Depends(require(UserRole.OPERATOR))]
Admin = Annotated[Principal, Depends(require(UserRole.ADMIN))]


async def auditor(ctx: Ctx, user: CurrentUser, addr: ClientAddr) -> Auditor:
    """Audit records of the current user, from the request's address (see services.audit)."""
    return Auditor(ctx.pools, user.username, addr)


Audit = Annotated[Auditor, Depends(auditor)]
