from __future__ import annotations

import time

from fastapi import APIRouter, Response

from exapg.api.deps import Ctx
from exapg.api.schemas.health import DatabaseCheck, HealthPublic
from exapg.errors import ExaPGError

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", responses={503: {"model": HealthPublic}})
async def health(ctx: Ctx, response: Response) -> HealthPublic:
    """No authentication: the supervisor and load balancers call it. 503 when the
    coordinator does not answer."""
    started = time.perf_counter()
    try:
        async with ctx.pools.aconnection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")
    except ExaPGError as exc:
        response.status_code = 503
        return HealthPublic(status="unavailable", database=DatabaseCheck(ok=False, error=str(exc)))
    latency = round((time.perf_counter() - started) * 1000, 2)
    return HealthPublic(status="ok", database=DatabaseCheck(ok=True, latency_ms=latency))
