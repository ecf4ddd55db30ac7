from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from exapg.api.context import AppContext
from exapg.api.core.errors import NotAuthenticatedError
from exapg.api.core.security import require_strong_password
from exapg.api.crud import users
from exapg.api.deps import Audit, ClientAddr, Ctx, CurrentUser
from exapg.api.schemas.auth import LoginRequest, MePublic, PasswordChange, TokenPublic
from exapg.api.schemas.users import UserPublic
from exapg.api.services import auth
from exapg.api.services.audit import Auditor

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
def logout(user: CurrentUser, ctx: Ctx, audit: Audit) -> None:
    with audit.action("logout", target=user.username):
        auth.logout(ctx, jti=user.jti, expires_at=user.expires_at)


@router.post("/password", responses={401: {}, 422: {}, 429: {}})
async def change_password(
    body: PasswordChange, user: CurrentUser, ctx: Ctx, addr: ClientAddr, audit: Audit
) -> TokenPublic:
    """A new password ends every session of the user; the answer is a new token for this one.
    The current password is checked under the login limits: a stolen session cannot
    guess it faster than a login could."""
    # a wrong current password is audited by the login limits, as a failed login is
    require_strong_password(body.new_password, username=user.username)
    try:
        found = await auth.checked(ctx, username=user.username, password=body.current_password,
                                   client_addr=addr, action=auth.PASSWORD_CHANGE)
    except NotAuthenticatedError:
        raise NotAuthenticatedError("the current password is wrong") from None
    return await run_in_threadpool(_new_password, ctx, audit, found, user.username,
                                  body.new_password)


def _new_password(
    ctx: AppContext, audit: Auditor, found: users.Credentials, username: str, password: str
) -> TokenPublic:
    with audit.action(auth.PASSWORD_CHANGE, target=username):
        token, claims, account = auth.new_password(ctx, found=found, username=username,
                                                   password=password)
    return TokenPublic(
        access_token=token,
        expires_at=_at(claims.expires_at),
        user=UserPublic.model_validate(account, from_attributes=True),
        device_token=None,  # the browser keeps the one it has
    )
