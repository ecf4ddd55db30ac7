"""Audited actions: who did what to what, from where, and whether it worked.

A route runs its action inside `Auditor.action(...)` (the `Audit` dependency gives the
request's auditor), which writes one record when the action ends: a success, or a failure
with `reason` (a short code) and `error` (the message the client got). Checks of the input
before the action (schema, password rules, unknown nodes) are no attempt and not recorded.

The record is written after the action gave its connection back, so a request never holds
two pooled connections. When a failure cannot be recorded (the coordinator is down), the
action's own error still reaches the client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from exapg.api.core.db import Pools
from exapg.api.core.errors import (
    ApiError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
    NotSupportedError,
    RateLimitedError,
    UnavailableError,
)
from exapg.api.crud import audit
from exapg.errors import ExaPGError, first_line

log = logging.getLogger(__name__)
REASONS: tuple[tuple[type[Exception], str], ...] = (
    (NotAuthenticatedError, "not_authenticated"),
    (ForbiddenError, "forbidden"),
    (NotFoundError, "not_found"),
    (ConflictError, "conflict"),
    (RateLimitedError, "rate_limited"),
    (InvalidInputError, "invalid_input"),
    (UnavailableError, "unavailable"),
    (NotSupportedError, "not_supported"),
    (ApiError, "refused"),
    (psycopg.errors.QueryCanceled, "timeout"),
    (psycopg.Error, "database_error"),
)


def reason_of(exc: Exception) -> str:
    """The audit log's short code for why an action failed."""
    return next((code for kind, code in REASONS if isinstance(exc, kind)), "error")


@dataclass
class Outcome:
    """What a running action adds to its record: more detail, or that it took no effect."""

    detail: dict[str, Any] = field(default_factory=dict)
    success: bool = True


@dataclass(frozen=True)
class Auditor:
    """The audit records of one actor (the logged-in user, or the name a login claims)."""

    pools: Pools
    actor: str | None
    client_addr: str | None

    @contextmanager
    def action(
        self, action: str, *, target: str | None, detail: dict[str, Any] | None = None
    ) -> Iterator[Outcome]:
        """Run the block as `action` on `target`; recorded once, as it ended."""
        outcome = Outcome(dict(detail or {}))
        try:
            yield outcome
        except Exception as exc:
            self._failed(action, target, {**outcome.detail, "reason": reason_of(exc),
                                          "error": first_line(exc)})
            raise
        with self.pools.connection() as conn:
            self.record(conn, action, target=target, success=outcome.success, detail=outcome.detail)

    def record(
        self,
        conn: psycopg.Connection,
        action: str,
        *,
        target: str | None,
        success: bool,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """One record written on `conn`, for callers that decide the outcome themselves
        (logins: refusals answered from memory are never written)."""
        audit.record(conn, actor=self.actor, action=action, target=target, success=success,
                     client_addr=self.client_addr, detail=detail)

    def _failed(self, action: str, target: str | None, detail: dict[str, Any]) -> None:
        try:
            with self.pools.connection() as conn:
                self.record(conn, action, target=target, success=False, detail=detail)
        except (ExaPGError, psycopg.Error) as exc:
            log.warning("failed %s of %s by %s not audited: %s", action, target, self.actor,
                        first_line(exc))
