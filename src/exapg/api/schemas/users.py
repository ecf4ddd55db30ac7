from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from exapg.api.core.security import UserRole
from exapg.api.schemas.common import Body, Username
from exapg.passwords import MIN_PASSWORD, RULE

# The length is checked here; the whole rule (exapg.passwords) by the routes, which know the user.
NewPassword = Annotated[str, Field(min_length=MIN_PASSWORD, max_length=256, description=RULE)]


class UserCreate(Body):
    username: Username
    password: NewPassword
    role: UserRole = UserRole.VIEWER


class UserUpdate(Body):
    role: UserRole | None = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> UserUpdate:
        if self.role is None and self.enabled is None:
            raise ValueError("give role and/or enabled")
        return self


class PasswordReset(Body):
    password: NewPassword


class UserPublic(BaseModel):
    username: str
    role: UserRole
    enabled: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
