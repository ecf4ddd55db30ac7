"""The stack's nodes as the API sees them: topology, live inspection, services, roles."""

from __future__ import annotations

import psycopg

from exapg.api.access import StackAccess
from exapg.api.core.db import Pools
from exapg.api.core.errors import NotFoundError
from exapg.cluster.citus import CitusState, citus_state
from exapg.cluster.probe import NodeReport, inspect_cluster
from exapg.cluster.roles import RoleChange, latest_role_changes
from exapg.cluster.split_brain import ObservedRole, configured_role, observed_role, replication_groups
from exapg.cluster.topology import Topology
from exapg.errors import ExaPGError, first_line
from exapg.status import ServiceStatus

NODE_WAIT = 3.0


def inspect(access: StackAccess, pools: Pools) -> tuple[Topology, list[NodeReport]]:
    topology = access.topology()
    hosts = {n.name: access.dsn(n.name).host for n in topology.nodes}
    reports = inspect_cluster(
        topology,
        lambda node: pools.connection(node.name, timeout=NODE_WAIT),
        host_for=lambda node: hosts[node.name],
    )
    return topology, reports


def roles(topology: Topology, report: NodeReport) -> dict[str, str]:
    """The node's configured role (from the topology) and the one it showed."""
    return {"configured_role": configured_role(topology.node(report.name)),
            "observed_role": observed_role(report)}


def pooler_target(topology: Topology) -> str:
    """The node pgBouncer sends clients to: its [databases] entry names the port of the
    topology's first node (in Docker mode, the coordinator service). After a switchover
    that node need not be the one named coordinator, nor a primary."""
    return topology.coordinator.name


def latest_role_change(topology: Topology, reports: list[NodeReport], pools: Pools) -> RoleChange | None:
    """The newest switchover or failover recorded on the pooler's target or another node of
    its replication group (in a split brain each side has its own record); None when none
    is recorded, the table does not exist or no node can tell."""
    target = pooler_target(topology)
    group = next(g for g in replication_groups(topology) if target in g)
    up = {r.name for r in reports if observed_role(r) != ObservedRole.DOWN}
    found: list[RoleChange] = []
    for name in (n for n in group if n in up):
        try:
            with pools.connection(name, timeout=NODE_WAIT) as conn:
                found += latest_role_changes(conn, 1)
        except (ExaPGError, psycopg.Error):
            continue  # not readable there (no grant, gone since the inspection): ask the others
    return max(found, key=lambda c: c.at, default=None)


def citus(access: StackAccess, pools: Pools) -> tuple[CitusState | None, str | None]:
    """Citus state from the coordinator, or why it could not be read (None, None: no Citus)."""
    coordinator = access.topology().coordinator.name
    try:
        with pools.connection(coordinator, timeout=NODE_WAIT) as conn:
            return citus_state(conn), None
    except (ExaPGError, psycopg.Error) as exc:
        return None, first_line(exc)


def services(access: StackAccess) -> tuple[list[ServiceStatus], str | None]:
    try:
        return access.services(), None
    except ExaPGError as exc:
        return [], str(exc)


def node_names(access: StackAccess) -> list[str]:
    return [n.name for n in access.topology().nodes]


def require_node(access: StackAccess, name: str) -> None:
    names = node_names(access)
    if name not in names:
        raise NotFoundError(f"no node named {name!r} (nodes: {', '.join(names)})")

