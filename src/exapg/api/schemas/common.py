from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

USERNAME_PATTERN = r"^[a-z][a-z0-9_.-]{2,62}$"
Username = Annotated[
    str,
    StringConstraints(pattern=USERNAME_PATTERN, min_length=3, max_length=63),
    Field(
        description="3 to 63 characters: lower-case letters, digits, '_', '.', '-'",
        examples=["alice"],
    ),
]
NodeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
Pid = Annotated[int, Field(ge=1, le=2**31 - 1)]


class Body(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Message(BaseModel):
    detail: str
