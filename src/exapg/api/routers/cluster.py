from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from exapg.api.deps import Ctx, Viewer
from exapg.api.schemas.cluster import (
    CitusPublic,
    ClusterPublic,
    NodePublic,
    RoleChangePublic,
    ServicePublic,
    WritablePublic,
)
from exapg.api.services.cluster_view import (
    citus,
    inspect,
    latest_role_change,
    pooler_target,
    roles,
    services,
)
from exapg.cluster.split_brain import split_brain

router = APIRouter(prefix="/api/cluster", tags=["cluster"])


@router.get("")
def cluster(_: Viewer, ctx: Ctx) -> ClusterPublic:
    topology, reports = inspect(ctx.access, ctx.pools)
    found, error = services(ctx.access)
    state, citus_error = citus(ctx.access, ctx.pools)
    split = split_brain(topology, reports)
    change = latest_role_change(topology, reports, ctx.pools)
    return ClusterPublic(
        mode=str(topology.mode),
        nodes=[NodePublic.model_validate({**r.to_dict(), **roles(topology, r)}) for r in reports],
        services=[ServicePublic.model_validate(s.to_dict()) for s in found],
        services_error=error,
        citus=CitusPublic.model_validate(asdict(state)) if state else None,
        citus_error=citus_error,
        split_brain=bool(split),
        split_brain_nodes=[WritablePublic.model_validate(asdict(w)) for w in split],
        pooler_target=pooler_target(topology),
        latest_role_change=RoleChangePublic.model_validate(asdict(change)) if change else None,
    )
