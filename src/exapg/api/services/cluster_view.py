"""The stack's nodes as the API sees them: topology, live inspection, services."""

from __future__ import annotations

import psycopg

from exapg.api.access import StackAccess
from exapg.api.core.db import Pools
from exapg.api.core.errors import NotFoundError
from exapg.cluster.citus import CitusState, citus_state
from exapg.cluster.probe import NodeReport, inspect_cluster
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

