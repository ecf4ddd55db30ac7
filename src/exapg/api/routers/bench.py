"""The last `exapg bench tpch` run of this stack, as recorded in its results folder."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from exapg.api.core.errors import NotFoundError
from exapg.api.deps import Ctx, Viewer

router = APIRouter(prefix="/api/bench", tags=["bench"])

LATEST = "tpch-latest.json"


@router.get("/tpch/latest")
def latest_tpch(_: Viewer, ctx: Ctx) -> dict[str, Any]:
    """The last TPC-H run: per-query status and times, geometric mean, machine and settings.
    404 until `exapg bench tpch` has run against this stack."""
    path = ctx.settings.state_dir / "results" / LATEST
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError("no TPC-H run recorded yet: run 'exapg bench tpch'") from None
    except (OSError, ValueError) as exc:
        raise NotFoundError(f"the last TPC-H result cannot be read: {exc}") from None
    return document
