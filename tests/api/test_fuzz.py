"""Schemathesis fuzzes every operation of the OpenAPI schema: no input may cause a 500.

The app runs in-process (ASGI) against the session's real stack, with an admin token so
the fuzzer gets past authentication. Logout is left out: it would end the token. Driven
with Hypothesis directly (one `@given` per operation) rather than through the
schemathesis pytest plugin.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from exapg.api.app import create_app

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
def restore_users(admin, api_server):
    """Fuzzing creates and changes users (an `alice` admin, say): put things back."""
    before = {u["username"] for u in admin.get("/api/users").json()}
    yield
    for user in admin.get("/api/users").json():
        if user["username"] not in before:
            assert admin.delete(f"/api/users/{user['username']}").status_code == 204
    admin.patch("/api/users/admin", json={"role": "admin", "enabled": True})
    admin.post("/api/users/admin/password", json={"password": api_server.admin_password})


def test_no_operation_answers_with_a_server_error(fuzz_app, admin_token, restore_users):
    found = operations(fuzz_app)
    assert len(found) >= 15
    failures = []
    for operation in found:
        try:
            fuzz(operation, admin_token)
        except Exception as exc:  # collect every failing operation
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
