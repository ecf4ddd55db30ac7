"""The dashboard overview: one query on the coordinator plus the sampler's cache.

Readings are shared for EXAPG_OVERVIEW_TTL seconds (see `shared.SharedReading`).
"""

from __future__ import annotations

from typing import Any

from exapg.api.context import AppContext
from exapg.api.metrics import cache_hit_ratio, live_tps, read_live_overview
from exapg.api.schemas.dashboard import OverviewPublic


async def overview_json(ctx: AppContext) -> bytes:
    async def load() -> bytes:
        return OverviewPublic.model_validate(await overview(ctx)).model_dump_json().encode()

    return await ctx.overview_cache.get(load)


async def overview(ctx: AppContext) -> dict[str, Any]:
    async with ctx.pools.aconnection() as conn:
        row = await read_live_overview(conn)
    nodes = ctx.sampler.nodes()
    latest = ctx.sampler.latest()
    up = sum(1 for n in nodes if n.healthy)
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
        "nodes": {
            "up": up,
            "down": len(nodes) - up,
            "total": len(nodes),
            "items": [
                {"name": n.name, "role": n.role, "healthy": n.healthy, "state": n.state}
                for n in nodes
            ],
            "checked_at": min((n.checked_at for n in nodes), default=None),
        },
        "replication": row["replication"] or [],
        "pgbouncer_pools": ctx.sampler.pools(),
        "sampled_at": row["at"],
    }
