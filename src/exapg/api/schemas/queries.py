from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ActiveQuery(BaseModel):
    node: str
    pid: int
    usename: str | None
    datname: str | None
    application_name: str | None
    client_addr: str | None
    state: str | None
    wait_event_type: str | None
    wait_event: str | None
    query_start: datetime | None
    duration_seconds: float | None
    query: str | None


class NodeError(BaseModel):
    node: str
    error: str


class QueryList(BaseModel):
    queries: list[ActiveQuery]
    errors: list[NodeError]


class SignalResult(BaseModel):
    node: str
    pid: int
    action: str
    signalled: bool


class Statement(BaseModel):
    queryid: str
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int
    cache_hit_ratio: float | None


class TopStatements(BaseModel):
    available: bool
    reason: str | None = None
    statements: list[Statement]
