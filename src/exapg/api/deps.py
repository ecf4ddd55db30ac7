"""FastAPI dependencies: the app context, the current user, and role checks.

All async: a sync dependency costs a trip through the thread pool on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from exapg.api.context import AppContext
from exapg.api.crud import users
from exapg.api.errors import ForbiddenError, NotAuthenticatedError
from exapg.api.security import UserRole, decode_token

bearer = HTTPBearer(auto_error=False, description="The access token from POST /api/auth/login")


async def get_context(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[AppContext, Depends(get_context)]


async def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


ClientAddr = Annotated[str | None, Depends(client_addr)]


@dataclass(frozen=True)
class Principal:
    username: str
    role: UserRole
    jti: str
    expires_at: int


async def current_user(
    ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The token's user as the database knows it: a disabled user, a changed role or a
    logged-out token takes effect at once in this process (within EXAPG_SESSION_TTL in
    others)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticatedError()
    claims = decode_token(ctx.config.secret_key, credentials.credentials)
    if claims is None:
        raise NotAuthenticatedError("invalid or expired token: log in again")

    async def load() -> tuple[str, bool] | None:
        async with ctx.pools.aconnection() as conn:
            return await users.session_state(conn, username=claims.username, jti=claims.jti)

    state = await ctx.sessions.check(claims.jti, claims.username, load)
    if state is None or not state[1]:
        raise NotAuthenticatedError("session ended (logged out, user disabled or deleted)")
    return Principal(claims.username, UserRole(state[0]), claims.jti, claims.expires_at)


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
