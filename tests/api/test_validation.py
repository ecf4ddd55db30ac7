"""Bad input gets a clear 4xx, never a 500; headers and CORS are strict."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration

BAD_USER_BODIES = [
    {},
    {"username": "ab", "password": "x" * 16},  # name too short
    {"username": "Bad Name", "password": "x" * 16},
    {"username": "valid_name", "password": "short"},
    {"username": "valid_name", "password": "x" * 16, "role": "superuser"},
    {"username": "valid_name", "password": "x" * 16, "extra": 1},
    {"username": "nul\u0000name", "password": "x" * 16},
    {"username": 12345, "password": "x" * 16},
    [],
    "text",
]


@pytest.mark.parametrize("body", BAD_USER_BODIES)
def test_bad_user_bodies_are_422(admin, body):
    answer = admin.post("/api/users", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


def test_malformed_json_is_4xx(admin):
    answer = admin.post("/api/users", content=b"{not json",
                        headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500


@pytest.mark.parametrize("path,method,body", [
    ("/api/users/admin", "PATCH", {}),
    ("/api/users/admin", "PATCH", {"role": "root"}),
    ("/api/users/admin", "PATCH", {"enabled": "maybe"}),
    ("/api/users/NOT-VALID", "GET", None),
    ("/api/users/x%00y", "GET", None),
    ("/api/users/admin/password", "POST", {"password": "short"}),
    ("/api/queries/coordinator/0/cancel", "POST", None),
    ("/api/queries/coordinator/99999999999/cancel", "POST", None),
    ("/api/queries/coordinator/abc/cancel", "POST", None),
    ("/api/queries/COORD/1/cancel", "POST", None),
    ("/api/audit?limit=0", "GET", None),
    ("/api/audit?limit=100000", "GET", None),
    ("/api/audit?action=DROP%20TABLE", "GET", None),
    ("/api/dashboard/timeseries?minutes=100000", "GET", None),
    ("/api/queries/top?limit=-1", "GET", None),
])
def test_bad_parameters_are_4xx(admin, path, method, body):
    answer = admin.request(method, path, json=body)
    assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)


def test_login_bodies(api_server):
    with api_server.client() as client:
        assert client.post("/api/auth/login", json={"username": "admin"}).status_code == 422
        assert client.post("/api/auth/login", json={"username": "admin", "password": ""}).status_code == 422
        assert client.post("/api/auth/login", content=b"username=admin").status_code == 422


def test_security_headers(api_server):
    answer = httpx.get(f"{api_server.url}/api/health", timeout=10)
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"


def test_cors_allows_only_the_front_end_origin(api_server):
    port = api_server.stack.settings.mgmt_frontend_port
    allowed, evil = f"http://localhost:{port}", "http://evil.example"
    for origin, expected in ((allowed, allowed), (evil, None)):
        answer = httpx.options(
            f"{api_server.url}/api/dashboard/overview", timeout=10,
            headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"},
        )
        assert answer.headers.get("access-control-allow-origin") == expected
