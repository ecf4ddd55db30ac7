"""API errors: library-level exceptions that the app translates into HTTP answers at the edge."""

from __future__ import annotations

from exapg.errors import ExaPGError


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
