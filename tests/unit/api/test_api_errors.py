"""Library errors become HTTP answers at the edge only, each with a one-line detail."""

from __future__ import annotations

import psycopg
import pytest

from exapg.api.core.errors import (
    ConflictError,
    NotAuthenticatedError,
    RateLimitedError,
    UnavailableError,
)
from exapg.errors import ConfigurationError, ExaPGError
from tests.unit.api.conftest import Api


def raising(exc: Exception):
    def route() -> None:
        raise exc

    return route


@pytest.mark.parametrize(("exc", "status", "detail"), [
    (ExaPGError("pg_ctl failed: see the log"), 503, "pg_ctl failed: see the log"),
    (ConfigurationError("EXAPG_TOKEN_TTL: seconds between 60 and 604800"), 503,
     "EXAPG_TOKEN_TTL: seconds between 60 and 604800"),
    (ConflictError("a user named 'bob' already exists"), 409, "a user named 'bob' already exists"),
    (UnavailableError("node standby is not reachable"), 503, "node standby is not reachable"),
    (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), 504,
     "the database did not answer in time"),
    (psycopg.OperationalError("server closed the connection unexpectedly\nThis probably means..."), 503,
     "database error: server closed the connection unexpectedly"),
    (psycopg.errors.UndefinedTable(""), 503, "database error: UndefinedTable"),
])
def test_errors_map_to_status_and_one_line(api: Api, exc, status, detail):
    api.app.add_api_route("/api/raise", raising(exc), methods=["POST"])
    answer = api.client.post("/api/raise")
    assert (answer.status_code, answer.json()) == (status, {"detail": detail})


def test_api_errors_keep_their_headers(api: Api):
    api.app.add_api_route("/api/limited", raising(RateLimitedError("too many failed logins", 7)), methods=["POST"])
    api.app.add_api_route("/api/anonymous", raising(NotAuthenticatedError()), methods=["POST"])
    assert api.client.post("/api/limited").headers["retry-after"] == "7"
    assert api.client.post("/api/anonymous").headers["www-authenticate"] == "Bearer"


def test_a_stopped_stack_is_503_through_a_real_route(api: Api):
    answer = api.client.get("/api/cluster", headers=api.session("viewer"))
    assert answer.status_code == 503
    assert answer.json() == {"detail": "node coordinator is not running: start the stack with 'exapg up'"}


def test_a_login_while_the_coordinator_is_unreachable_is_503_not_401(api: Api):
    answer = api.client.post("/api/auth/login", json={"username": "admin", "password": "whatever-it-is"})
    assert answer.status_code == 503
