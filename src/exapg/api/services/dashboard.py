"""The dashboard overview: one query on the coordinator plus the sampler's cache.

Readings are shared for EXAPG_OVERVIEW_TTL seconds (see `shared.SharedReading`).
"""

from __future__ import annotations

import time
from typing import Any

from exapg.api.context import AppContext
from exapg.api.core.errors import UnavailableError
from exapg.api.schemas.dashboard import OverviewPublic
from exapg.api.services.sampler import cache_hit_ratio, live_tps, read_live_overview
from exapg.cluster.probe import NodeReport

COORDINATOR_WAIT = 1.0  # seconds, then the overview shows the outage instead of its numbers


async def overview_json(ctx: AppContext) -> bytes:
    async def load() -> bytes:
        return OverviewPublic.model_validate(await overview(ctx)).model_dump_json().encode()

    return await ctx.overview_cache.get(load)


async def overview(ctx: AppContext) -> dict[str, Any]:
    try:
        async with ctx.pools.aconnection(timeout=COORDINATOR_WAIT) as conn:
            row = await read_live_overview(conn)
    except UnavailableError as exc:
        return without_coordinator(ctx, str(exc))
    nodes = ctx.sampler.nodes()
    latest = ctx.sampler.latest()
    return {
        "database": {
            "name": row["database"],
            "size_bytes": latest.size_bytes if latest else None,
            "size_sampled_at": latest.at if latest else None,
        },
        "connections": {
            "total": sum(row["by_state"].values()),
            "max": row["max_connections"],
            "by_state": row["by_state"],
        },
        "tps": live_tps(row, latest),
        "cache_hit_ratio": cache_hit_ratio(row["blks_hit"], row["blks_read"]),
        "uptime_seconds": row["uptime_seconds"],
        "nodes": _nodes(nodes, None),
        "replication": row["replication"] or [],
        "pgbouncer_pools": ctx.sampler.pools(),
        "sampled_at": row["at"],
        "coordinator_error": None,
    }


def without_coordinator(ctx: AppContext, error: str) -> dict[str, Any]:
    """The coordinator does not answer: the nodes as the sampler last saw them (the
    coordinator down, whatever it saw), and the error, instead of a 503."""
    coordinator = ctx.access.topology().coordinator.name
    return {
        "database": {"name": ctx.settings.postgres_db, "size_bytes": None, "size_sampled_at": None},
        "connections": None,
        "tps": None,
        "cache_hit_ratio": None,
        "uptime_seconds": None,
        "nodes": _nodes(ctx.sampler.nodes(), coordinator),
        "replication": [],
        "pgbouncer_pools": ctx.sampler.pools(),
        "sampled_at": time.time(),
        "coordinator_error": error,
    }


def _nodes(nodes: list[NodeReport], down: str | None) -> dict[str, Any]:
    items = [
        {"name": n.name, "role": n.role, "healthy": n.healthy and n.name != down,
         "state": "down" if n.name == down else n.state}
        for n in nodes
    ]
    up = sum(1 for n in items if n["healthy"])
    return {
        "up": up,
        "down": len(items) - up,
        "total": len(items),
        "items": items,
        "checked_at": min((n.checked_at for n in nodes), default=None),
    }
