"""Schemathesis fuzzes every operation of the OpenAPI schema: no input may cause a 500.

The app runs in-process (ASGI) against the session's real stack, with an admin token so
the fuzzer gets past authentication. Logout is left out: it would end the token. Driven
with Hypothesis directly (one `@given` per operation) rather than through the
schemathesis pytest plugin.
"""

from __future__ import annotations

import secrets

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from exapg.api.app import create_app
from exapg.api.core.security import hash_password
from exapg.api.crud import users
from exapg.postgres.conn import connect
from tests.api.fixtures import unique_name

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 40
SKIPPED = {"auth-logout"}


@pytest.fixture(scope="module")
def fuzz_app(ha_stack, api_server):
    app = create_app(ha_stack.settings, environ=dict(ha_stack.env))
    with TestClient(app):  # runs the lifespan: pools, schema check, sampler
        yield app


def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if op.definition.raw.get("operationId") not in SKIPPED]


def fuzz(operation, token: str) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                               checks=[not_a_server_error])

    run()


@pytest.fixture
def restore_users(api_server):
    """Fuzzing creates and changes users (an `alice` admin, say), and may end any session
    of theirs: put things back in the database itself."""
    with connect(api_server.stack.coordinator) as conn:
        before = [row[0] for row in conn.execute("SELECT username FROM exapg_mgmt.users")]
    yield
    with connect(api_server.stack.coordinator) as conn:
        conn.execute("DELETE FROM exapg_mgmt.users WHERE username <> ALL(%s)", (before,))
        conn.execute("UPDATE exapg_mgmt.users SET role = 'admin', enabled = true WHERE username = 'admin'")
        if api_server.login("admin", api_server.admin_password).status_code != 200:
            users.set_password(conn, username="admin", hashed=hash_password(api_server.admin_password))


@pytest.fixture
def fuzz_token(api_server, admin, restore_users) -> str:
    """An admin of the fuzz's own, so that what it does to `admin` ends no other test's session."""
    name, password = unique_name("fuzzer"), f"{secrets.token_urlsafe(16)}-Aa1"
    answer = admin.post("/api/users", json={"username": name, "password": password, "role": "admin"})
    assert answer.status_code == 201, answer.text
    return api_server.token(name, password)


def test_no_operation_answers_with_a_server_error(fuzz_app, fuzz_token):
    found = operations(fuzz_app)
    assert len(found) >= 15
    failures = []
    for operation in found:
        try:
            fuzz(operation, fuzz_token)
        except Exception as exc:  # collect every failing operation
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
