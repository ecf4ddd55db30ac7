"""Who gets in: missing, forged, expired and ended sessions, and the roles' limits."""

from __future__ import annotations

import pytest

from tests.unit.api.conftest import Api

NOT_AUTHENTICATED = "not authenticated: log in and send the token"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/auth/me"), ("POST", "/api/auth/logout"), ("GET", "/api/users"),
    ("POST", "/api/users"), ("GET", "/api/cluster"), ("GET", "/api/dashboard/overview"),
    ("POST", "/api/queries/coordinator/42/cancel"), ("GET", "/api/audit"),
    ("GET", "/api/bench/tpch/latest"),
])
def test_no_token_is_401_with_a_bearer_challenge(api: Api, method, path):
    answer = api.client.request(method, path, json={"username": "nobody1", "password": "x" * 16})
    assert answer.status_code == 401
    assert answer.json() == {"detail": NOT_AUTHENTICATED}
    assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("authorization", [
    "Bearer not-a-token",
    "Bearer " + "e30.e30.",  # {} . {} unsigned
])
def test_a_malformed_token_is_401(api: Api, authorization):
    answer = api.client.get("/api/auth/me", headers={"Authorization": authorization})
    assert answer.status_code == 401
    assert answer.json()["detail"] == "invalid or expired token: log in again"


def test_another_scheme_is_not_a_token(api: Api):
    answer = api.client.get("/api/auth/me", headers={"Authorization": f"Basic {api.token('admin')}"})
    assert (answer.status_code, answer.json()["detail"]) == (401, NOT_AUTHENTICATED)


def test_a_token_signed_with_another_key_is_refused(api: Api):
    forged = api.token("admin", secret="another-key-of-sufficient-length-" + "x" * 16)
    answer = api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401


def test_an_expired_token_is_refused(api: Api):
    expired = api.token("admin", ttl=-5)
    answer = api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert (answer.status_code, answer.json()["detail"]) == (401, "invalid or expired token: log in again")


def test_a_confirmed_session_answers_me(api: Api):
    answer = api.client.get("/api/auth/me", headers=api.session("operator"))
    assert answer.status_code == 200
    assert answer.json()["username"] == "operator1" and answer.json()["role"] == "operator"


@pytest.mark.parametrize(("state", "detail"), [
    ({"enabled": False}, "session ended (logged out, user disabled or deleted)"),
    ({"logged_out": True}, "session ended (logged out, user disabled or deleted)"),
    ({"version": 2}, "session ended (new password, or the user was disabled): log in again"),
])
def test_an_ended_session_is_401(api: Api, state, detail):
    answer = api.client.get("/api/auth/me", headers=api.session("admin", **state))
    assert (answer.status_code, answer.json()["detail"]) == (401, detail)


def test_the_role_in_the_database_counts_not_the_one_in_the_token(api: Api):
    answer = api.client.get("/api/users", headers=api.session("admin", db_role="viewer"))
    assert (answer.status_code, answer.json()["detail"]) == (403, "this needs the admin role (you are viewer)")


def test_coordinator_down_an_unchecked_session_may_only_read(api: Api):
    headers = api.unchecked("admin")
    me = api.client.get("/api/auth/me", headers=headers)
    assert me.status_code == 200 and me.json()["role"] == "admin"
    answer = api.client.post("/api/auth/logout", headers=headers)
    assert answer.status_code == 503
    assert answer.json()["detail"] == "the coordinator is down: the management UI is read-only until it is back"


VIEWER_REFUSED = [
    ("GET", "/api/users", None, "admin"),
    ("POST", "/api/users", {"username": "newuser", "password": "Aa1-" + "x" * 16, "role": "admin"}, "admin"),
    ("PATCH", "/api/users/admin", {"role": "viewer"}, "admin"),
    ("DELETE", "/api/users/admin", None, "admin"),
    ("POST", "/api/users/admin/password", {"password": "Aa1-" + "x" * 16}, "admin"),
    ("GET", "/api/audit", None, "admin"),
    ("POST", "/api/queries/coordinator/42/cancel", None, "operator"),
    ("POST", "/api/queries/coordinator/42/terminate", None, "admin"),
]


@pytest.mark.parametrize(("method", "path", "body", "needed"), VIEWER_REFUSED)
def test_a_viewer_is_refused_what_needs_more(api: Api, method, path, body, needed):
    answer = api.client.request(method, path, json=body, headers=api.session("viewer"))
    assert answer.status_code == 403
    assert answer.json()["detail"] == f"this needs the {needed} role (you are viewer)"


def test_an_operator_may_cancel_but_not_terminate_or_manage_users(api: Api):
    headers = api.session("operator")
    assert api.client.post("/api/queries/coordinator/42/terminate", headers=headers).status_code == 403
    assert api.client.get("/api/users", headers=headers).status_code == 403
    # cancel passes the role check and reaches the stack, whose nodes are down here
    cancel = api.client.post("/api/queries/coordinator/42/cancel", headers=headers)
    assert cancel.status_code == 503 and "coordinator is not running" in cancel.json()["detail"]


def test_an_admin_passes_the_role_checks_and_reaches_the_stack(api: Api):
    headers = api.session("admin")
    for path in ("/api/users", "/api/audit", "/api/users/someone"):
        answer = api.client.get(path, headers=headers)
        assert answer.status_code == 503, (path, answer.text)
        assert answer.json()["detail"] == "node coordinator is not running: start the stack with 'exapg up'"
