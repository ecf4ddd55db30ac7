from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from exapg.api import dashboard, timeseries
from exapg.api.deps import Ctx, Viewer
from exapg.api.schemas.dashboard import OverviewPublic, SeriesPublic, TimeseriesPublic

router = APIRouter(prefix="/api/dashboard", tags=["dashboard"])


@router.get("/overview")
def overview(_: Viewer, ctx: Ctx) -> OverviewPublic:
    return OverviewPublic.model_validate(dashboard.overview(ctx))


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
        SeriesPublic(name=s.name, unit=s.unit, source=s.source, points=s.points) for s in found
    ]
    return TimeseriesPublic(minutes=minutes, series=items)
