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
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from exapg import __version__
from exapg.api.access import StackAccess, stack_access
from exapg.api.context import AppContext
from exapg.api.core import config, web
from exapg.api.core.db import Pools
from exapg.api.core.errors import ApiError
from exapg.api.routers import audit, auth, bench, cluster, dashboard, health, queries, users
from exapg.api.services import bootstrap
from exapg.api.services.hashing import PasswordChecks
from exapg.api.services.login_gate import Gate
from exapg.api.services.metrics import Sampler, read_overview, read_pgbouncer_pools
from exapg.api.services.shared import SessionCache, SharedReading
from exapg.api.services.timeseries import Prometheus
from exapg.api.services.topology import inspect
from exapg.errors import ConfigurationError, ExaPGError
from exapg.postgres.conn import connect
from exapg.settings import Settings

log = logging.getLogger("exapg.api")
ROUTERS = (health, auth, users, dashboard, cluster, queries, audit, bench)


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
    _add_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    web.mount_frontend(app, ctx.config.ui_dir)
    return app


def build_context(settings: Settings, access: StackAccess, env: Mapping[str, str]) -> AppContext:
    secret = access.api_secret_key()
    if not secret:
        raise ConfigurationError("API_SECRET_KEY is not set: set it (or API_SECRET_KEY_FILE)")
    api_config = config.ApiConfig(
        secret_key=secret,
        admin_password=access.admin_password(),
        frontend_origins=config.frontend_origins(settings.mgmt_frontend_port, env),
        prometheus_url=env.get("EXAPG_PROMETHEUS_URL")
        or f"http://127.0.0.1:{settings.prometheus_port}",
        token_ttl=config.token_ttl(env),
        ui_dir=config.ui_dir(env),
        sample_interval=config.sample_interval(env),
        overview_ttl=config.overview_ttl(env),
        session_ttl=config.session_ttl(env),
    )
    pools = Pools(access)
    holder: list[AppContext] = []  # the sampler inspects nodes through the finished context
    sampler = Sampler(
        interval=api_config.sample_interval,
        overview=lambda: _read_overview(pools),
        nodes=lambda: inspect(holder[0])[1],
        pools=lambda: _read_pooler(access),
    )
    ctx = AppContext(
        settings=settings,
        config=api_config,
        access=access,
        pools=pools,
        sampler=sampler,
        prometheus=Prometheus(api_config.prometheus_url),
        overview_cache=SharedReading(api_config.overview_ttl),
        sessions=SessionCache(api_config.session_ttl),
        password_checks=PasswordChecks(),
        login_gate=Gate(),
    )
    holder.append(ctx)
    return ctx


def _read_overview(pools: Pools) -> dict[str, Any]:
    with pools.connection() as conn:
        return read_overview(conn)


def _read_pooler(access: StackAccess) -> list[dict[str, Any]] | None:
    dsn = access.pooler_dsn()
    if dsn is None:
        return None
    with connect(dsn, statement_timeout_ms=0) as conn:
        return read_pgbouncer_pools(conn)


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


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(ExaPGError)
    async def exapg_error(_: Request, exc: ExaPGError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def timeout(_: Request, exc: psycopg.Error) -> JSONResponse:
        return JSONResponse({"detail": "the database did not answer in time"}, status_code=504)

    @app.exception_handler(psycopg.Error)
    async def database_error(_: Request, exc: psycopg.Error) -> JSONResponse:
        log.error("database error: %s", exc)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return JSONResponse({"detail": f"database error: {first}"}, status_code=503)
