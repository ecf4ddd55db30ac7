"""Roles on every write, and the whole life of a management user."""

from __future__ import annotations

import secrets

import pytest

from tests.api.fixtures import unique_name

pytestmark = pytest.mark.integration


def test_viewer_reads_but_cannot_write_or_administer(api_server, make_user):
    viewer = make_user("viewer")
    with api_server.client(viewer.token) as client:
        for path in ("/api/dashboard/overview", "/api/cluster", "/api/queries", "/api/queries/top"):
            assert client.get(path).status_code == 200, path
        assert client.post("/api/queries/coordinator/12345/cancel").status_code == 403
        assert client.post("/api/queries/coordinator/12345/terminate").status_code == 403
        assert client.get("/api/users").status_code == 403
        assert client.get("/api/audit").status_code == 403
        created = client.post("/api/users", json={"username": unique_name("x"),
                                                 "password": "x" * 16, "role": "admin"})
        assert created.status_code == 403


def test_operator_cancels_but_cannot_terminate_or_administer(api_server, make_user):
    operator = make_user("operator")
    with api_server.client(operator.token) as client:
        assert client.post("/api/queries/coordinator/2147483000/cancel").status_code == 404
        assert client.post("/api/queries/coordinator/2147483000/terminate").status_code == 403
        assert client.get("/api/users").status_code == 403
        assert client.delete(f"/api/users/{operator.username}").status_code == 403


def test_user_lifecycle(api_server, admin):
    name, password = unique_name("life"), secrets.token_urlsafe(16)
    created = admin.post("/api/users", json={"username": name, "password": password,
                                             "role": "viewer"})
    assert created.status_code == 201 and created.json()["role"] == "viewer"
    assert "password" not in created.text and "hash" not in created.text
    assert admin.post("/api/users", json={"username": name, "password": password}).status_code == 409
    token = api_server.token(name, password)
    with api_server.client(token) as client:
        # role changes take effect on the live token
        assert admin.patch(f"/api/users/{name}", json={"role": "operator"}).status_code == 200
        assert client.get("/api/auth/me").json()["role"] == "operator"
        # disabling ends sessions and logins
        assert admin.patch(f"/api/users/{name}", json={"enabled": False}).status_code == 200
        assert client.get("/api/auth/me").status_code == 401
        assert api_server.login(name, password).status_code == 401
    assert admin.patch(f"/api/users/{name}", json={"enabled": True}).status_code == 200
    new_password = secrets.token_urlsafe(16)
    assert admin.post(f"/api/users/{name}/password", json={"password": new_password}).status_code == 204
    assert api_server.login(name, password).status_code == 401
    assert api_server.login(name, new_password).status_code == 200
    assert name in [u["username"] for u in admin.get("/api/users").json()]
    assert admin.delete(f"/api/users/{name}").status_code == 204
    assert admin.get(f"/api/users/{name}").status_code == 404
    assert api_server.login(name, new_password).status_code == 401
    actions = [(e["action"], e["actor"]) for e in admin.get("/api/audit").json()["items"]
               if e["target"] == name]
    for action in ("user_create", "user_update", "password_reset", "user_delete"):
        assert (action, "admin") in actions


def test_the_last_admin_cannot_be_removed(api_server, admin):
    admins = [u for u in admin.get("/api/users").json() if u["role"] == "admin" and u["enabled"]]
    assert [u["username"] for u in admins] == ["admin"]
    assert admin.delete("/api/users/admin").status_code == 409
    assert admin.patch("/api/users/admin", json={"role": "viewer"}).status_code == 409
    assert admin.patch("/api/users/admin", json={"enabled": False}).status_code == 409
    # with a second admin, one of them may go
    second, password = unique_name("adm"), secrets.token_urlsafe(16)
    admin.post("/api/users", json={"username": second, "password": password, "role": "admin"})
    assert admin.patch(f"/api/users/{second}", json={"role": "operator"}).status_code == 200
    assert admin.delete(f"/api/users/{second}").status_code == 204
    assert api_server.login("admin", api_server.admin_password).status_code == 200


def test_failed_changes_are_audited_with_their_reason(api_server, admin):
    """A refused change leaves a failure record, as a done one leaves a success."""
    name, password = unique_name("dup"), secrets.token_urlsafe(16)
    body = {"username": name, "password": password, "role": "viewer"}
    assert admin.post("/api/users", json=body).status_code == 201
    assert admin.post("/api/users", json=body).status_code == 409
    assert admin.delete("/api/users/nosuchuser").status_code == 404
    assert admin.delete(f"/api/users/{name}").status_code == 204
    created = [e for e in admin.get("/api/audit", params={"action": "user_create"}).json()["items"]
               if e["target"] == name]
    assert [e["success"] for e in created] == [False, True]  # newest first
    assert created[0]["actor"] == "admin" and created[0]["client_addr"] == "127.0.0.1"
    assert created[0]["detail"] == {"role": "viewer", "reason": "conflict",
                                    "error": f"a user named {name!r} already exists"}
    deleted = admin.get("/api/audit", params={"action": "user_delete", "actor": "admin"}).json()["items"]
    missing = [e for e in deleted if e["target"] == "nosuchuser"]
    assert missing and missing[0]["success"] is False and missing[0]["detail"]["reason"] == "not_found"
