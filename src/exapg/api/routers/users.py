from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from exapg.api.core.security import require_strong_password
from exapg.api.crud import users
from exapg.api.deps import Admin, Audit, Ctx
from exapg.api.schemas.common import USERNAME_PATTERN
from exapg.api.schemas.users import PasswordReset, UserCreate, UserPublic, UserUpdate
from exapg.api.services import users as manage

router = APIRouter(prefix="/api/users", tags=["users"])
UserPath = Annotated[str, Path(pattern=USERNAME_PATTERN, min_length=3, max_length=63)]


def _public(user: users.User) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


@router.get("")
def list_users(_: Admin, ctx: Ctx) -> list[UserPublic]:
    with ctx.pools.connection() as conn:
        return [_public(u) for u in users.list_users(conn)]


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {}})
def create_user(body: UserCreate, _: Admin, ctx: Ctx, audit: Audit) -> UserPublic:
    require_strong_password(body.password, username=body.username)
    with audit.action("user_create", target=body.username, detail={"role": str(body.role)}):
        user = manage.create(ctx.pools, username=body.username, role=body.role, password=body.password)
    return _public(user)


@router.get("/{username}", responses={404: {}})
def get_user(username: UserPath, _: Admin, ctx: Ctx) -> UserPublic:
    with ctx.pools.connection() as conn:
        return _public(users.get_user(conn, username=username))


@router.patch("/{username}", responses={404: {}, 409: {}})
def update_user(username: UserPath, body: UserUpdate, _: Admin, ctx: Ctx, audit: Audit) -> UserPublic:
    with audit.action("user_update", target=username,
                      detail=body.model_dump(mode="json", exclude_none=True)):
        user = manage.update(ctx.pools, ctx.sessions, username=username, role=body.role,
                             enabled=body.enabled)
    return _public(user)


@router.post("/{username}/password", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
def reset_password(username: UserPath, body: PasswordReset, _: Admin, ctx: Ctx, audit: Audit) -> None:
    require_strong_password(body.password, username=username)
    with audit.action("password_reset", target=username):
        manage.set_password(ctx.pools, ctx.sessions, username=username, password=body.password)


@router.delete("/{username}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}, 409: {}})
def delete_user(username: UserPath, _: Admin, ctx: Ctx, audit: Audit) -> None:
    with audit.action("user_delete", target=username):
        manage.delete(ctx.pools, ctx.sessions, username=username)
