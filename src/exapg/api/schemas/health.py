from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class DatabaseCheck(BaseModel):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class HealthPublic(BaseModel):
    status: Literal["ok", "unavailable"]
    database: DatabaseCheck
