from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status

from exapg.api import auth
from exapg.api.crud import audit, users
from exapg.api.deps import ClientAddr, Ctx, CurrentUser
from exapg.api.errors import NotAuthenticatedError
from exapg.api.schemas.auth import LoginRequest, MePublic, PasswordChange, TokenPublic
from exapg.api.schemas.users import UserPublic
from exapg.api.security import (
    UserRole,
    hash_password,
    issue_token,
    require_strong_password,
    verify_password,
)

router = APIRouter(prefix="/api/auth", tags=["auth"])


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


@router.post("/password", responses={401: {}, 422: {}})
def change_password(
    body: PasswordChange, user: CurrentUser, ctx: Ctx, addr: ClientAddr
) -> TokenPublic:
    """A new password ends every session of the user; the answer is a new token for this one."""
    require_strong_password(body.new_password, username=user.username)
    with ctx.pools.connection() as conn:
        found = users.credentials(conn, username=user.username)
    # hashing holds no pooled connection: each check costs a quarter of a second of CPU
    if found is None or not verify_password(found.password_hash, body.current_password):
        _audit_change(ctx, user.username, addr, success=False)
        raise NotAuthenticatedError("the current password is wrong")
    hashed = hash_password(body.new_password)
    with ctx.pools.connection() as conn:
        generation = users.set_password(conn, username=user.username, hashed=hashed)
        ctx.sessions.forget_user(user.username)
        account = users.get_user(conn, username=user.username)
    _audit_change(ctx, user.username, addr, success=True)
    token, claims = issue_token(
        ctx.config.secret_key,
        username=user.username,
        role=UserRole(account.role),
        uid=found.id,
        generation=generation,
        ttl=ctx.config.token_ttl,
    )
    return TokenPublic(
        access_token=token,
        expires_at=_at(claims.expires_at),
        user=UserPublic.model_validate(account, from_attributes=True),
    )


def _audit_change(ctx: Ctx, username: str, addr: str | None, *, success: bool) -> None:
    with ctx.pools.connection() as conn:
        audit.record(conn, actor=username, action="password_change", target=username,
                     success=success, client_addr=addr)
