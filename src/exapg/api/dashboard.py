"""The dashboard overview: one fresh query on the coordinator plus the sampler's cache."""

from __future__ import annotations

from typing import Any

from exapg.api.context import AppContext
from exapg.api.metrics import cache_hit_ratio, live_tps, read_overview


def overview(ctx: AppContext) -> dict[str, Any]:
    with ctx.pools.connection() as conn:
        row = read_overview(conn)
    nodes = ctx.sampler.nodes()
    up = sum(1 for n in nodes if n.healthy)
    return {
        "database": {"name": row["database"], "size_bytes": row["size_bytes"]},
        "connections": {
            "total": sum(row["by_state"].values()),
            "max": row["max_connections"],
            "by_state": row["by_state"],
        },
        "tps": live_tps(row, ctx.sampler.latest()),
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
