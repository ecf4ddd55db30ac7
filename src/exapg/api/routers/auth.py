from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from exapg.api.context import AppContext
from exapg.api.core.errors import NotAuthenticatedError
from exapg.api.core.security import UserRole, hash_password, issue_token, require_strong_password
from exapg.api.crud import audit, users
from exapg.api.deps import ClientAddr, Ctx, CurrentUser
from exapg.api.schemas.auth import LoginRequest, MePublic, PasswordChange, TokenPublic
from exapg.api.schemas.users import UserPublic
from exapg.api.services import auth

router = APIRouter(prefix="/api/auth", tags=["auth"])
PASSWORD_CHANGE = "password_change"  # noqa: S105 - an audit action, not a secret


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@router.post("/login", responses={401: {}, 429: {}})
async def login(body: LoginRequest, ctx: Ctx, addr: ClientAddr) -> TokenPublic:
    result = await auth.login(
        ctx,
        username=body.username,
        password=body.password,
        client_addr=addr,
        device_token=body.device_token,
    )
    return TokenPublic(
        access_token=result.token,
        expires_at=_at(result.claims.expires_at),
        user=UserPublic.model_validate(result.user, from_attributes=True),
        device_token=result.device_token,
    )


@router.get("/me")
def me(user: CurrentUser) -> MePublic:
    return MePublic(username=user.username, role=user.role, expires_at=_at(user.expires_at))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(user: CurrentUser, ctx: Ctx, addr: ClientAddr) -> None:
    with ctx.pools.connection() as conn:
        users.revoke_token(conn, jti=user.jti, expires_at=user.expires_at)
        ctx.sessions.forget_token(user.jti)
        audit.record(
            conn,
            actor=user.username,
            action="logout",
            target=user.username,
            success=True,
            client_addr=addr,
        )


@router.post("/password", responses={401: {}, 422: {}, 429: {}})
async def change_password(
    body: PasswordChange, user: CurrentUser, ctx: Ctx, addr: ClientAddr
) -> TokenPublic:
    """A new password ends every session of the user; the answer is a new token for this one.
    The current password is checked under the login limits: a stolen session cannot
    guess it faster than a login could."""
    require_strong_password(body.new_password, username=user.username)
    try:
        found = await auth.checked(ctx, username=user.username, password=body.current_password,
                                   client_addr=addr, action=PASSWORD_CHANGE)
    except NotAuthenticatedError:
        raise NotAuthenticatedError("the current password is wrong") from None
    return await run_in_threadpool(_new_password, ctx, found, user.username, body.new_password, addr)


def _new_password(
    ctx: AppContext, found: users.Credentials, username: str, password: str, addr: str | None
) -> TokenPublic:
    hashed = hash_password(password)
    with ctx.pools.connection() as conn:
        generation = users.set_password(conn, username=username, hashed=hashed)
        ctx.sessions.forget_user(username)
        account = users.get_user(conn, username=username)
        audit.record(conn, actor=username, action=PASSWORD_CHANGE, target=username,
                     success=True, client_addr=addr)
    token, claims = issue_token(
        ctx.config.secret_key,
        username=username,
        role=UserRole(account.role),
        uid=found.id,
        generation=generation,
        ttl=ctx.config.token_ttl,
    )
    return TokenPublic(
        access_token=token,
        expires_at=_at(claims.expires_at),
        user=UserPublic.model_validate(account, from_attributes=True),
        device_token=None,  # the browser keeps the one it has
    )
