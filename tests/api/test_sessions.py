"""Sessions are bound to the user row and its password: a reset, a change, a disable and a
deletion end every session of that user at once, and a token never comes back to life
(re-enabled user, user made again under the same name)."""

from __future__ import annotations

import secrets
import time

import pytest

from tests.api.fixtures import unique_name

pytestmark = pytest.mark.integration
SESSION_TTL = 1.2  # EXAPG_SESSION_TTL's default, and a little more


def strong() -> str:
    return f"{secrets.token_urlsafe(16)}-Aa1"


def me(api_server, token: str) -> int:
    with api_server.client(token) as client:
        return client.get("/api/auth/me").status_code


def test_a_reset_ends_every_session_of_the_user(api_server, make_user, admin):
    account = make_user("operator")
    other = api_server.token(account.username, account.password)
    assert me(api_server, account.token) == me(api_server, other) == 200
    new = strong()
    assert admin.post(f"/api/users/{account.username}/password", json={"password": new}).status_code == 204
    assert me(api_server, account.token) == me(api_server, other) == 401
    assert me(api_server, api_server.token(account.username, new)) == 200


def test_changing_ones_password_ends_the_other_sessions_and_renews_this_one(api_server, make_user):
    account = make_user("viewer")
    stolen = api_server.token(account.username, account.password)
    with api_server.client(account.token) as client:
        answer = client.post("/api/auth/password", json={"current_password": account.password,
                                                         "new_password": strong()})
    assert answer.status_code == 200, answer.text
    renewed = answer.json()["access_token"]
    assert me(api_server, stolen) == me(api_server, account.token) == 401
    assert me(api_server, renewed) == 200


def test_a_disable_ends_sessions_for_good(api_server, make_user, admin):
    account = make_user("viewer")
    assert admin.patch(f"/api/users/{account.username}", json={"enabled": False}).status_code == 200
    assert me(api_server, account.token) == 401
    assert admin.patch(f"/api/users/{account.username}", json={"enabled": True}).status_code == 200
    assert me(api_server, account.token) == 401  # enabled again: old sessions stay ended
    assert me(api_server, api_server.token(account.username, account.password)) == 200


def test_a_deleted_users_token_does_not_work_for_a_new_user_of_the_same_name(api_server, admin):
    name, password = unique_name("gone"), strong()
    assert admin.post("/api/users", json={"username": name, "password": password}).status_code == 201
    old = api_server.token(name, password)
    assert admin.delete(f"/api/users/{name}").status_code == 204
    assert me(api_server, old) == 401
    again = admin.post("/api/users", json={"username": name, "password": strong(), "role": "admin"})
    assert again.status_code == 201
    time.sleep(SESSION_TTL)  # past any remembered check of the old token
    try:
        with api_server.client(old) as client:
            assert client.get("/api/auth/me").status_code == 401
            assert client.get("/api/users").status_code == 401
    finally:
        admin.delete(f"/api/users/{name}")


def test_a_role_change_takes_effect_on_live_sessions(api_server, make_user, admin):
    account = make_user("viewer")
    assert admin.patch(f"/api/users/{account.username}", json={"role": "operator"}).status_code == 200
    with api_server.client(account.token) as client:
        assert client.get("/api/auth/me").json()["role"] == "operator"
