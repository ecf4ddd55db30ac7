"""The stack's nodes as the API sees them: topology, live inspection, services."""

from __future__ import annotations

from exapg.api.context import AppContext
from exapg.api.errors import NotFoundError
from exapg.cluster.inspect import NodeReport, inspect_cluster
from exapg.cluster.topology import Topology
from exapg.errors import ExaPGError
from exapg.status import ServiceStatus

NODE_WAIT = 3.0


def inspect(ctx: AppContext) -> tuple[Topology, list[NodeReport]]:
    topology = ctx.access.topology()
    hosts = {n.name: ctx.access.dsn(n.name).host for n in topology.nodes}
    reports = inspect_cluster(
        topology,
        lambda node: ctx.pools.connection(node.name, timeout=NODE_WAIT),
        host_for=lambda node: hosts[node.name],
    )
    return topology, reports


def services(ctx: AppContext) -> tuple[list[ServiceStatus], str | None]:
    try:
        return ctx.access.services(), None
    except ExaPGError as exc:
        return [], str(exc)


def node_names(ctx: AppContext) -> list[str]:
    return [n.name for n in ctx.access.topology().nodes]


def require_node(ctx: AppContext, name: str) -> None:
    names = node_names(ctx)
    if name not in names:
        raise NotFoundError(f"no node named {name!r} (nodes: {', '.join(names)})")
