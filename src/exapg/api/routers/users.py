from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from exapg.api.core.security import hash_password, require_strong_password
from exapg.api.crud import audit, users
from exapg.api.deps import Admin, ClientAddr, Ctx
from exapg.api.schemas.common import USERNAME_PATTERN
from exapg.api.schemas.users import PasswordReset, UserCreate, UserPublic, UserUpdate

router = APIRouter(prefix="/api/users", tags=["users"])
UserPath = Annotated[str, Path(pattern=USERNAME_PATTERN, min_length=3, max_length=63)]


def _public(user: users.User) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


@router.get("")
def list_users(_: Admin, ctx: Ctx) -> list[UserPublic]:
    with ctx.pools.connection() as conn:
        return [_public(u) for u in users.list_users(conn)]


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {}})
def create_user(body: UserCreate, admin: Admin, ctx: Ctx, addr: ClientAddr) -> UserPublic:
    require_strong_password(body.password, username=body.username)
    hashed = hash_password(body.password)
    with ctx.pools.connection() as conn:
        user = users.create_user(conn, username=body.username, role=body.role, hashed=hashed)
        audit.record(
            conn,
            actor=admin.username,
            action="user_create",
            target=body.username,
            success=True,
            client_addr=addr,
            detail={"role": str(body.role)},
        )
    return _public(user)


@router.get("/{username}", responses={404: {}})
def get_user(username: UserPath, _: Admin, ctx: Ctx) -> UserPublic:
    with ctx.pools.connection() as conn:
        return _public(users.get_user(conn, username=username))


@router.patch("/{username}", responses={404: {}, 409: {}})
def update_user(
    username: UserPath, body: UserUpdate, admin: Admin, ctx: Ctx, addr: ClientAddr
) -> UserPublic:
    with ctx.pools.connection() as conn:
        user = users.update_user(conn, username=username, role=body.role, enabled=body.enabled)
        ctx.sessions.forget_user(username)
        audit.record(
            conn,
            actor=admin.username,
            action="user_update",
            target=username,
            success=True,
            client_addr=addr,
            detail=body.model_dump(mode="json", exclude_none=True),
        )
    return _public(user)


@router.post("/{username}/password", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
def reset_password(
    username: UserPath, body: PasswordReset, admin: Admin, ctx: Ctx, addr: ClientAddr
) -> None:
    require_strong_password(body.password, username=username)
    hashed = hash_password(body.password)
    with ctx.pools.connection() as conn:
        users.set_password(conn, username=username, hashed=hashed)
        ctx.sessions.forget_user(username)
        audit.record(
            conn,
            actor=admin.username,
            action="password_reset",
            target=username,
            success=True,
            client_addr=addr,
        )


@router.delete("/{username}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}, 409: {}})
def delete_user(username: UserPath, admin: Admin, ctx: Ctx, addr: ClientAddr) -> None:
    with ctx.pools.connection() as conn:
        users.delete_user(conn, username=username)
        ctx.sessions.forget_user(username)
        audit.record(
            conn,
            actor=admin.username,
            action="user_delete",
            target=username,
            success=True,
            client_addr=addr,
        )
