from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from exapg.api.core.security import UserRole
from exapg.api.deps import Admin, Audit, Ctx, Operator, Principal, Viewer
from exapg.api.schemas.common import NodeName, Pid
from exapg.api.schemas.queries import QueryList, SignalResult, TopStatements
from exapg.api.services import activity
from exapg.api.services.audit import Auditor
from exapg.api.services.cluster_view import node_names, require_node

router = APIRouter(prefix="/api/queries", tags=["queries"])
NodePath = Annotated[NodeName, Path()]
PidPath = Annotated[Pid, Path()]


def _every_literal(user: Principal) -> bool:
    """Roles below admin see no string literal in query text; admins none that holds a secret."""
    return not user.role.allows(UserRole.ADMIN)


@router.get("")
def list_queries(
    user: Viewer,
    ctx: Ctx,
    include_idle: Annotated[bool, Query()] = False,
    include_internal: Annotated[bool, Query(description="show the UI's own sessions")] = False,
) -> QueryList:
    rows, errors = activity.list_activity(
        ctx.pools,
        node_names(ctx.access),
        include_idle=include_idle,
        include_internal=include_internal,
        every_literal=_every_literal(user),
    )
    return QueryList.model_validate({"queries": rows, "errors": errors})


@router.get("/top")
def top(user: Viewer, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> TopStatements:
    available, reason, rows = activity.top_statements(
        ctx.pools, limit=limit, every_literal=_every_literal(user)
    )
    return TopStatements.model_validate(
        {"available": available, "reason": reason, "statements": rows}
    )


def _signal(ctx: Ctx, audit: Auditor, node: str, pid: int, action: str) -> SignalResult:
    require_node(ctx.access, node)
    with audit.action(f"query_{action}", target=f"{node}:{pid}",
                      detail={"node": node, "pid": pid}) as outcome:
        outcome.success = activity.signal_backend(ctx.pools, node=node, pid=pid, action=action)
    return SignalResult(node=node, pid=pid, action=action, signalled=outcome.success)


@router.post("/{node}/{pid}/cancel", responses={404: {}})
def cancel(node: NodePath, pid: PidPath, _: Operator, ctx: Ctx, audit: Audit) -> SignalResult:
    """Cancel the running statement of a session (operator or admin)."""
    return _signal(ctx, audit, node, pid, "cancel")


@router.post("/{node}/{pid}/terminate", responses={404: {}})
def terminate(node: NodePath, pid: PidPath, _: Admin, ctx: Ctx, audit: Audit) -> SignalResult:
    """Terminate a session (admin only)."""
    return _signal(ctx, audit, node, pid, "terminate")
