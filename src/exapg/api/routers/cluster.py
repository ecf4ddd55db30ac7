from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from exapg.api.deps import Ctx, Viewer
from exapg.api.schemas.cluster import CitusPublic, ClusterPublic, NodePublic, ServicePublic
from exapg.api.services.cluster_view import citus, inspect, services

router = APIRouter(prefix="/api/cluster", tags=["cluster"])


@router.get("")
def cluster(_: Viewer, ctx: Ctx) -> ClusterPublic:
    topology, reports = inspect(ctx.access, ctx.pools)
    found, error = services(ctx.access)
    state, citus_error = citus(ctx.access, ctx.pools)
    return ClusterPublic(
        mode=str(topology.mode),
        nodes=[NodePublic.model_validate(r.to_dict()) for r in reports],
        services=[ServicePublic.model_validate(s.to_dict()) for s in found],
        services_error=error,
        citus=CitusPublic.model_validate(asdict(state)) if state else None,
        citus_error=citus_error,
    )
