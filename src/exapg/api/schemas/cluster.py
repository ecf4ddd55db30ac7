from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from exapg.cluster.roles import RoleChangeKind
from exapg.cluster.split_brain import ConfiguredRole, ObservedRole


class DownstreamPublic(BaseModel):
    name: str
    client_addr: str | None
    state: str
    sync_state: str
    lag_bytes: float | None
    lag_seconds: float | None


class UpstreamPublic(BaseModel):
    status: str | None
    sender_host: str | None
    sender_port: int | None
    slot: str | None
    lag_bytes: float | None
    lag_seconds: float | None


class NodePublic(BaseModel):
    name: str
    role: str
    host: str
    port: int
    healthy: bool
    state: str
    version: str | None
    size_bytes: int | None
    uptime_seconds: float | None
    connections: int | None
    downstream: list[DownstreamPublic]
    upstream: UpstreamPublic | None
    error: str | None
    checked_at: float
    configured_role: ConfiguredRole = Field(
        description="the role the topology gives the node: standby when it names a primary")
    observed_role: ObservedRole = Field(
        description="what the node is: primary (writable), standby (in recovery) or down")
    timeline: int | None = Field(description="the timeline of its WAL; null while down")


class ServicePublic(BaseModel):
    name: str
    role: str
    port: int | None
    pid: int | None
    state: str
    healthy: bool
    detail: str


class CitusNodePublic(BaseModel):
    node_id: int
    host: str
    port: int
    role: str
    active: bool
    should_have_shards: bool
    reachable: bool | None
    shards: int
    bytes: int
    error: str | None


class RebalancePublic(BaseModel):
    job_id: int
    state: str
    running: bool
    tasks_total: int
    tasks_done: int
    started_at: float | None
    finished_at: float | None
    message: str | None


class CitusPublic(BaseModel):
    """Citus as the coordinator sees it: pg_dist_node, shards per node, the latest rebalance."""

    version: str
    nodes: list[CitusNodePublic]
    rebalance: RebalancePublic | None


class WritablePublic(BaseModel):
    name: str
    timeline: int | None


class RoleChangePublic(BaseModel):
    """A switchover or failover ExaPG carried out (a row of exapg.role_changes)."""

    id: int
    at: datetime
    kind: RoleChangeKind
    from_server: str
    to_server: str
    timeline: int


class ClusterPublic(BaseModel):
    mode: str
    nodes: list[NodePublic]
    services: list[ServicePublic]
    services_error: str | None = None
    citus: CitusPublic | None = None
    citus_error: str | None = None
    split_brain: bool = Field(
        description="more than one node of a primary and its standbys is writable")
    split_brain_nodes: list[WritablePublic] = Field(
        description="the writable nodes of the split brain, with their timelines")
    pooler_target: str = Field(description="the node pgBouncer sends clients to")
    latest_role_change: RoleChangePublic | None = Field(
        description="the newest switchover or failover recorded; null when none is")
