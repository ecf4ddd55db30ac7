"""Authentication: every endpoint but health and login needs a valid, live token."""

from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest

from tests.api.fixtures import unique_name

pytestmark = pytest.mark.integration
PUBLIC = {("GET", "/api/health"), ("POST", "/api/auth/login")}
SAMPLE_PATH_VALUES = {"username": "alice", "node": "coordinator", "pid": "1"}


def operations(api_server) -> list[tuple[str, str]]:
    spec = httpx.get(f"{api_server.url}/openapi.json", timeout=10).json()
    found = []
    for path, methods in spec["paths"].items():
        concrete = path
        for name, value in SAMPLE_PATH_VALUES.items():
            concrete = concrete.replace("{" + name + "}", value)
        found += [(method.upper(), concrete) for method in methods]
    return found


def test_health_needs_no_token_and_reports_the_database(api_server):
    answer = httpx.get(f"{api_server.url}/api/health", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.json()["database"]["ok"] is True


def test_every_other_endpoint_rejects_requests_without_a_token(api_server):
    checked = 0
    with api_server.client() as client:
        for method, path in operations(api_server):
            if (method, path) in PUBLIC:
                continue
            answer = client.request(method, path, json={})
            assert answer.status_code == 401, (method, path, answer.status_code, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 15


def test_forged_expired_and_garbage_tokens_are_rejected(api_server):
    secret = api_server.stack.runtime.stack.secrets.api_secret_key
    now = int(time.time())
    claims = {"sub": "admin", "role": "admin", "jti": "x", "iat": now - 100, "iss": "exapg",
              "aud": "exapg-mgmt"}
    tokens = [
        jwt.encode({**claims, "exp": now - 10}, secret, algorithm="HS256"),  # expired
        jwt.encode({**claims, "exp": now + 600}, "another-key-" * 4, algorithm="HS256"),  # forged
        jwt.encode({**claims, "exp": now + 600}, None, algorithm="none"),  # unsigned
        "not-a-token",
    ]
    for token in tokens:
        with api_server.client(token) as client:
            assert client.get("/api/auth/me").status_code == 401, token


def test_login_returns_an_expiring_token_and_me_tells_who(api_server):
    answer = api_server.login("admin", api_server.admin_password)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer" and body["user"]["role"] == "admin"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] > time.time() + 60
    with api_server.client(body["access_token"]) as client:
        assert client.get("/api/auth/me").json()["username"] == "admin"


def test_wrong_password_is_401_and_audited(api_server, admin):
    name = unique_name("nobody")
    answer = api_server.login(name, "wrong-password-123")
    assert answer.status_code == 401
    entries = admin.get("/api/audit", params={"action": "login"}).json()["items"]
    failed = [e for e in entries if e["target"] == name]
    assert failed and failed[0]["success"] is False
    assert failed[0]["client_addr"] == "127.0.0.1"
    assert failed[0]["detail"]["reason"] == "bad_credentials"


def test_the_admin_password_exapg_credentials_prints_logs_in(api_server):
    result = api_server.stack.cli("credentials", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["management_user"] == "admin"
    for url in (api_server.url, shown["management_url"]):  # this suite's server, the stack's own
        with httpx.Client(base_url=url, timeout=30) as client:
            answer = client.post("/api/auth/login", json={"username": shown["management_user"],
                                                          "password": shown["management_password"]})
        assert answer.status_code == 200, (url, answer.text)
        assert answer.json()["user"]["role"] == "admin"


def test_logout_ends_the_session(api_server, make_user):
    account = make_user("viewer")
    with api_server.client(account.token) as client:
        assert client.get("/api/auth/me").status_code == 200
        assert client.post("/api/auth/logout").status_code == 204
        assert client.get("/api/auth/me").status_code == 401


def test_user_changes_own_password(api_server, make_user):
    account = make_user("viewer")
    new = "a-brand-new-password"
    with api_server.client(account.token) as client:
        wrong = client.post("/api/auth/password",
                            json={"current_password": "nope", "new_password": new})
        assert wrong.status_code == 401
        ok = client.post("/api/auth/password",
                         json={"current_password": account.password, "new_password": new})
        assert ok.status_code == 200 and ok.json()["access_token"]
    assert api_server.login(account.username, account.password).status_code == 401
    assert api_server.login(account.username, new).status_code == 200
