"""The API documents itself: Swagger UI at /docs and a valid OpenAPI schema at /openapi.json."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis

from exapg import __version__

pytestmark = pytest.mark.integration
DOCUMENTED_OPERATION_IDS = {"users-create_user", "queries-cancel", "queries-terminate", "auth-login"}


def csp_sources(policy: str, directive: str) -> list[str]:
    for part in policy.split(";"):
        name, *sources = part.split()
        if name == directive:
            return sources
    return []


def test_docs_serve_the_swagger_ui_with_a_policy_that_lets_it_load(api_server):
    answer = httpx.get(f"{api_server.url}/docs", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert "<title>ExaPG management API - Swagger UI</title>" in page
    assert 'id="swagger-ui"' in page and "SwaggerUIBundle(" in page
    assert "'/openapi.json'" in page
    policy = answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    # The page's script, style sheet and icon come from elsewhere: the policy must allow them.
    loaded = [(url, "script-src") for url in re.findall(r'<script src="([^"]+)"', page)]
    loaded += [(url, "style-src") for url in re.findall(r'rel="stylesheet" href="([^"]+)"', page)]
    loaded += [(url, "img-src") for url in re.findall(r'rel="shortcut icon" href="([^"]+)"', page)]
    assert {directive for _, directive in loaded} == {"script-src", "style-src", "img-src"}, page
    for url, directive in loaded:
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        assert origin in csp_sources(policy, directive), (url, policy)
    assert "'unsafe-inline'" in csp_sources(policy, "script-src")  # SwaggerUIBundle({...}) inline


def test_openapi_json_is_a_valid_openapi_document(api_server):
    answer = httpx.get(f"{api_server.url}/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    spec = answer.json()
    assert spec["openapi"].startswith("3.")
    assert (spec["info"]["title"], spec["info"]["version"]) == ("ExaPG management API", __version__)
    # against the official OpenAPI meta-schema (bundled with schemathesis); raises if invalid
    schemathesis.openapi.from_dict(spec).validate()
    ids = [op["operationId"] for methods in spec["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    assert set(ids) >= DOCUMENTED_OPERATION_IDS
    assert all(path.startswith("/api/") for path in spec["paths"])
