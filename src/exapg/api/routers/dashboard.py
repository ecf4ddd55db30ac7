from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from exapg.api.deps import Ctx, Viewer
from exapg.api.schemas.dashboard import OverviewPublic, SeriesPublic, TimeseriesPublic
from exapg.api.services import dashboard, timeseries

router = APIRouter(prefix="/api/dashboard", tags=["dashboard"])


@router.get("/overview", response_model=OverviewPublic)
async def overview(_: Viewer, ctx: Ctx) -> Response:
    """Numbers of the stack; shared between requests for EXAPG_OVERVIEW_TTL seconds."""
    return Response(await dashboard.overview_json(ctx), media_type="application/json")


@router.get("/timeseries")
def series(
    _: Viewer, ctx: Ctx, minutes: Annotated[int, Query(ge=1, le=60)] = 15
) -> TimeseriesPublic:
    found = timeseries.collect(
        prometheus=ctx.prometheus,
        sampler=ctx.sampler,
        database=ctx.settings.postgres_db,
        minutes=minutes,
    )
    items = [
        SeriesPublic(name=s.name, unit=s.unit, source=s.source, points=list(s.points)) for s in found
    ]
    return TimeseriesPublic(minutes=minutes, series=items)
