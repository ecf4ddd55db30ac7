"""The management API: `uvicorn --factory exapg.api.app:create_app`.

create_app() resolves everything that can be wrong in the configuration at once (a
missing secret, no stack set up), so a misconfigured backend fails at start with one
clear line instead of on the first request.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from exapg import __version__
from exapg.api.access import StackAccess, stack_access
from exapg.api.context import AppContext, build_context
from exapg.api.core import config, web
from exapg.api.core.errors import ApiError, add_error_handlers
from exapg.api.routers import audit, auth, backups, bench, cluster, dashboard, health, queries, users
from exapg.api.services import bootstrap
from exapg.errors import ExaPGError
from exapg.settings import Settings

log = logging.getLogger("exapg.api")
ROUTERS = (health, auth, users, dashboard, cluster, queries, audit, bench, backups)


def create_app(
    settings: Settings | None = None,
    *,
    access: StackAccess | None = None,
    environ: Mapping[str, str] | None = None,
) -> FastAPI:
    env = config.environ() if environ is None else environ
    settings = settings or Settings.load()
    access = access or stack_access(settings, env.get("DATABASE_URL"))
    ctx = build_context(settings, access, env)
    app = FastAPI(
        title="ExaPG management API",
        version=__version__,
        lifespan=_lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.ctx = ctx
    _add_middleware(app, ctx)
    add_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    web.mount_frontend(app, ctx.config.ui_dir)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    ctx: AppContext = app.state.ctx
    await run_in_threadpool(_start, ctx)
    await ctx.pools.open_async()
    try:
        yield
    finally:
        await ctx.pools.close_async()
        await run_in_threadpool(_stop, ctx)


def _start(ctx: AppContext) -> None:
    """Schema and first admin (waiting for the coordinator a while), then the sampler."""
    deadline = time.monotonic() + ctx.settings.start_timeout
    while True:
        try:
            with ctx.pools.connection() as conn:
                bootstrap.ensure_schema(conn)
                bootstrap.ensure_first_admin(conn, ctx.config.admin_password)
            break
        except ApiError as exc:
            if time.monotonic() > deadline:
                raise ExaPGError(f"management API cannot prepare the coordinator: {exc}") from None
            log.warning("waiting for the coordinator: %s", exc)
            time.sleep(1.0)
    ctx.sampler.sample_once()
    ctx.sampler.start()
    gc.freeze()  # start-up objects leave the collector's view: shorter pauses under load


def _stop(ctx: AppContext) -> None:
    ctx.sampler.stop()
    ctx.password_checks.close()
    ctx.pools.close()


def _operation_id(route: APIRoute) -> str:
    """Stable operation ids (`users-create_user`) for the generated TypeScript client."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def _add_middleware(app: FastAPI, ctx: AppContext) -> None:
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(ctx.config.frontend_origins),
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=False,
        max_age=600,
    )
    app.add_middleware(web.SecurityHeaders)
