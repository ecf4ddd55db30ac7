"""API errors: library-level exceptions, translated into HTTP answers at the edge only
(`add_error_handlers`): an ApiError by its own status, any other ExaPGError 503, a
statement timeout 504, any other database error 503 with its first line."""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from exapg.errors import ExaPGError, first_line

log = logging.getLogger("exapg.api")


class ApiError(ExaPGError):
    status_code = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}


class NotAuthenticatedError(ApiError):
    status_code = 401

    def __init__(self, message: str = "not authenticated: log in and send the token") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(ApiError):
    status_code = 403


class NotFoundError(ApiError):
    status_code = 404


class ConflictError(ApiError):
    status_code = 409


class RateLimitedError(ApiError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class InvalidInputError(ApiError):
    """Valid JSON whose value breaks a rule the schema cannot state (a weak password)."""

    status_code = 422


class UnavailableError(ApiError):
    status_code = 503


class NotSupportedError(ApiError):
    """What this deployment cannot do at all (backups in Docker mode)."""

    status_code = 501


def add_error_handlers(app: FastAPI) -> None:
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
        return JSONResponse({"detail": f"database error: {first_line(exc)}"}, status_code=503)
