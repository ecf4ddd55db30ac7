from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status

from exapg.api import auth
from exapg.api.crud import audit, users
from exapg.api.deps import ClientAddr, Ctx, CurrentUser
from exapg.api.errors import NotAuthenticatedError
from exapg.api.schemas.auth import LoginRequest, MePublic, PasswordChange, TokenPublic
from exapg.api.schemas.users import UserPublic
from exapg.api.security import hash_password, require_strong_password, verify_password

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@router.post("/login", responses={401: {}, 429: {}})
def login(body: LoginRequest, ctx: Ctx, addr: ClientAddr) -> TokenPublic:
    result = auth.login(ctx, username=body.username, password=body.password, client_addr=addr)
    return TokenPublic(
        access_token=result.token,
        expires_at=_at(result.claims.expires_at),
        user=UserPublic.model_validate(result.user, from_attributes=True),
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


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT, responses={401: {}})
def change_password(body: PasswordChange, user: CurrentUser, ctx: Ctx, addr: ClientAddr) -> None:
    require_strong_password(body.new_password, username=user.username)
    with ctx.pools.connection() as conn:
        found = users.password_hash(conn, username=user.username)
        if found is None or not verify_password(found[0], body.current_password):
            audit.record(
                conn,
                actor=user.username,
                action="password_change",
                target=user.username,
                success=False,
                client_addr=addr,
            )
            raise NotAuthenticatedError("the current password is wrong")
        users.set_password(conn, username=user.username, hashed=hash_password(body.new_password))
        audit.record(
            conn,
            actor=user.username,
            action="password_change",
            target=user.username,
            success=True,
            client_addr=addr,
        )
