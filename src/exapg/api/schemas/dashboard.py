from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class DatabasePublic(BaseModel):
    name: str
    size_bytes: int | None
    size_sampled_at: float | None


class ConnectionsPublic(BaseModel):
    total: int
    max: int
    by_state: dict[str, int]


class NodeHealth(BaseModel):
    name: str
    role: str
    healthy: bool
    state: str


class NodesPublic(BaseModel):
    up: int
    down: int
    total: int
    items: list[NodeHealth]
    checked_at: float | None


class ReplicationPublic(BaseModel):
    name: str
    state: str
    lag_bytes: float | None
    lag_seconds: float | None


class OverviewPublic(BaseModel):
    """With the coordinator down: its figures null, the nodes as last seen, and why."""

    database: DatabasePublic
    connections: ConnectionsPublic | None
    tps: float | None
    cache_hit_ratio: float | None
    uptime_seconds: float | None
    nodes: NodesPublic
    replication: list[ReplicationPublic]
    pgbouncer_pools: list[dict[str, Any]] | None
    sampled_at: float
    coordinator_error: str | None = None


class SeriesPublic(BaseModel):
    name: str
    unit: str
    source: str
    points: list[tuple[float, float | None]]


class TimeseriesPublic(BaseModel):
    minutes: int
    series: list[SeriesPublic]
