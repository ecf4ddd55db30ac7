"""The auditor: one record per audited action, success or failure, and a failure that cannot
be recorded never hides the action's own error.

The pools and the audit table's data function are faked (our own layers): what is written
to PostgreSQL, and how, is tested against a real server in tests/api.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from exapg.api.core.errors import ConflictError, NotFoundError, UnavailableError
from exapg.api.services import audit as audited
from exapg.api.services.audit import Auditor, reason_of


class Pools:
    """Connections that are only tokens; `down` makes every checkout fail as a stopped node does."""

    def __init__(self) -> None:
        self.down = False
        self.open = 0

    @contextmanager
    def connection(self, node: str = "coordinator", timeout: float = 5.0) -> Iterator[object]:
        if self.down:
            raise UnavailableError(f"node {node} is not reachable (no connection within 5s)")
        self.open += 1
        try:
            yield object()
        finally:
            self.open -= 1


@pytest.fixture
def written(monkeypatch) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def record(conn: object, **row: Any) -> None:
        rows.append(row)

    monkeypatch.setattr(audited.audit, "record", record)
    return rows


@pytest.fixture
def pools() -> Pools:
    return Pools()


def auditor(pools: Pools) -> Auditor:
    return Auditor(pools, "alice", "192.0.2.7")  # type: ignore[arg-type]


def test_a_success_is_recorded_once_after_the_action(pools, written):
    with auditor(pools).action("user_create", target="bob", detail={"role": "viewer"}):
        assert written == []  # not before the action ended
    assert written == [{"actor": "alice", "action": "user_create", "target": "bob", "success": True,
                        "client_addr": "192.0.2.7", "detail": {"role": "viewer"}}]


def test_an_action_that_took_no_effect_is_recorded_as_such(pools, written):
    with auditor(pools).action("query_cancel", target="coordinator:42", detail={"pid": 42}) as outcome:
        outcome.success = False  # the session had nothing running
    assert [(r["success"], r["detail"]) for r in written] == [(False, {"pid": 42})]


def test_a_failure_is_recorded_with_its_reason_and_raised(pools, written):
    with pytest.raises(ConflictError), auditor(pools).action("user_delete", target="admin"):
        raise ConflictError("'admin' is the last enabled admin: make another admin first")
    assert written == [{"actor": "alice", "action": "user_delete", "target": "admin", "success": False,
                        "client_addr": "192.0.2.7",
                        "detail": {"reason": "conflict",
                                   "error": "'admin' is the last enabled admin: make another admin first"}}]


def test_the_record_is_written_after_the_action_gave_its_connection_back(pools, written, monkeypatch):
    seen: list[int] = []
    monkeypatch.setattr(audited.audit, "record", lambda conn, **row: seen.append(pools.open))
    with auditor(pools).action("user_update", target="bob"), pools.connection():
        pass
    with pytest.raises(NotFoundError), auditor(pools).action("user_update", target="bob"), pools.connection():
        raise NotFoundError("no user named 'bob'")
    assert seen == [1, 1]  # only the auditor's own connection: never two per request


def test_an_unrecordable_failure_keeps_the_actions_error(pools, written, caplog):
    pools.down = True
    with caplog.at_level(logging.WARNING), pytest.raises(NotFoundError, match="no user named 'bob'"), \
            auditor(pools).action("password_reset", target="bob"):
        raise NotFoundError("no user named 'bob'")
    assert written == []
    assert "failed password_reset of bob by alice not audited: node coordinator is not reachable" in caplog.text


def test_an_unrecordable_success_is_an_error(pools, written):
    """The action happened but left no trace: the client must not read it as a clean success."""
    pools.down = True
    with pytest.raises(UnavailableError), auditor(pools).action("logout", target="alice"):
        pass


@pytest.mark.parametrize(("exc", "reason"), [
    (NotFoundError("x"), "not_found"),
    (UnavailableError("x"), "unavailable"),
    (psycopg.errors.QueryCanceled("x"), "timeout"),
    (psycopg.errors.UniqueViolation("x"), "database_error"),
    (RuntimeError("x"), "error"),
])
def test_reasons(exc, reason):
    assert reason_of(exc) == reason
