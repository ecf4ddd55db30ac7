from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from exapg.api.core.security import UserRole
from exapg.api.schemas.common import Body, Username
from exapg.api.schemas.users import NewPassword, UserPublic

LoginPassword = Annotated[str, Field(min_length=1, max_length=1024)]


class LoginRequest(Body):
    username: Username
    password: LoginPassword
    device_token: str | None = Field(
        None,
        max_length=2048,
        description="the device_token of an earlier login of this user from this browser: "
        "it lets the login past the throttle that failed logins of others put on the user",
    )


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_at: datetime
    user: UserPublic
    device_token: str | None = Field(
        None, description="keep it (per user, per browser) and send it with the next login"
    )


class MePublic(BaseModel):
    username: str
    role: UserRole
    expires_at: datetime


class PasswordChange(Body):
    current_password: LoginPassword
    new_password: NewPassword
