from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from exapg.api.crud import audit
from exapg.api.deps import Admin, Ctx
from exapg.api.schemas.audit import AuditEntryPublic, AuditPage
from exapg.api.schemas.common import USERNAME_PATTERN

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("")
def list_audit(
    _: Admin,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    action: Annotated[str | None, Query(pattern=r"^[a-z_]{1,40}$")] = None,
    actor: Annotated[str | None, Query(pattern=USERNAME_PATTERN)] = None,
) -> AuditPage:
    with ctx.pools.connection() as conn:
        rows, total = audit.list_entries(
            conn, limit=limit, offset=offset, action=action, actor=actor
        )
    items = [AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows]
    return AuditPage(items=items, total=total, limit=limit, offset=offset)
