"""A viewer (or anyone) never reads a password through the query monitor: the statements
that carry one are run for real on the coordinator, and every answer that holds query
text is searched for the secret."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time

import psycopg
import pytest
from psycopg import sql

from exapg.postgres.conn import connect
from tests.api.fixtures import unique_name

pytestmark = pytest.mark.integration


def secret() -> str:
    return f"Sekr1t-{secrets.token_hex(8)}"


@pytest.fixture
def coordinator(api_server):
    with connect(api_server.stack.coordinator) as conn:
        yield conn


def run_statements(conn, role: str, found: list[str]) -> None:
    """The utility statements PostgreSQL keeps with their literals, each with its own secret."""
    statements = [
        "CREATE ROLE {role} LOGIN PASSWORD '{s}'",
        "ALTER ROLE {role} WITH ENCRYPTED PASSWORD '{s}' VALID UNTIL 'infinity'",
        "ALTER USER {role} PASSWORD E'{s}'",
        "CREATE EXTENSION IF NOT EXISTS postgres_fdw",
        "CREATE SERVER {role}_srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', "
        "port '1', dbname 'x', passfile '/nonexistent/{s}')",
        "CREATE USER MAPPING FOR {role} SERVER {role}_srv OPTIONS (user '{role}', password '{s}')",
        "ALTER USER MAPPING FOR {role} SERVER {role}_srv OPTIONS (SET password '{s}')",
    ]
    for text in statements:
        value = secret()
        found.append(value)
        conn.execute(text.format(role=role, s=value))


def drop(conn, role: str) -> None:
    with contextlib.suppress(psycopg.Error):
        conn.execute(sql.SQL("DROP SERVER IF EXISTS {} CASCADE").format(sql.Identifier(f"{role}_srv")))
    with contextlib.suppress(psycopg.Error):
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def dblink_attempt(dsn, value: str) -> psycopg.Connection:
    """A session whose last statement (it failed: nothing listens on port 1) held a password."""
    conn = connect(dsn)
    conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")
    with contextlib.suppress(psycopg.Error):
        conn.execute(f"SELECT dblink_connect('exapg_probe', 'host=127.0.0.1 port=1 password={value}')")
    return conn


class Sleeper:
    """A session running `text` (sent as it is, literals and all) in a thread."""

    def __init__(self, dsn, text: str) -> None:
        self.conn = connect(dsn, statement_timeout_ms=0)
        self.thread = threading.Thread(target=self._run, args=(text,), daemon=True)
        self.thread.start()

    def _run(self, text: str) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn.execute(text)

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn.cancel()
        self.thread.join(10)
        self.conn.close()


def assert_nowhere(client, values: list[str]) -> list[str]:
    """Every endpoint with query text, every role's view: none of `values` in any answer."""
    texts = []
    for path, params in (("/api/queries", {"include_idle": True, "include_internal": True}),
                         ("/api/queries/top", {"limit": 100})):
        answer = client.get(path, params=params)
        assert answer.status_code == 200, answer.text
        for value in values:
            assert value not in answer.text, (path, value)
        texts.append(answer.text)
    return texts


def test_no_password_reaches_a_viewer_or_an_admin(api_server, make_user, admin, coordinator):
    viewer, role = make_user("viewer"), unique_name("leak")
    values: list[str] = []
    coordinator.execute("SELECT pg_stat_statements_reset()")  # ours among the top 100
    idle = running = None
    try:
        run_statements(coordinator, role, values)
        values.append(secret())
        idle = dblink_attempt(api_server.stack.coordinator, values[-1])
        values.append(secret())
        plain = f"plain-{secrets.token_hex(6)}"  # no secret: an admin sees it, a viewer not
        running = Sleeper(api_server.stack.coordinator,
                          f"SELECT pg_sleep(60) WHERE 'postgresql://app:{values[-1]}@db/x' <> '{plain}'")
        time.sleep(0.5)
        with api_server.client(viewer.token) as client:
            activity, top = assert_nowhere(client, [*values, plain])
        assert plain in assert_nowhere(admin, values)[0]
        # still listed, only the literals gone
        assert f"CREATE ROLE {role} LOGIN PASSWORD '***'" in top
        assert f"CREATE USER MAPPING FOR {role} SERVER {role}_srv OPTIONS (user '***', password '***')" in top
        assert "SELECT pg_sleep(60) WHERE '***'" in activity
    finally:
        if idle is not None:
            idle.close()
        if running is not None:
            running.close()
        drop(coordinator, role)
