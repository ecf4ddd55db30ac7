"""What the API answers with the stack down: health, the overview, charts, the last benchmark."""

from __future__ import annotations

import json

from exapg.api.services.timeseries import SERIES
from tests.unit.api.conftest import Api


def test_health_needs_no_login_and_is_503_without_the_coordinator(api: Api):
    answer = api.client.get("/api/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is False and body["database"]["latency_ms"] is None
    assert "coordinator" in body["database"]["error"]


def test_the_overview_shows_the_outage_instead_of_failing(api: Api):
    answer = api.client.get("/api/dashboard/overview", headers=api.session("viewer"))
    assert answer.status_code == 200
    body = answer.json()
    assert body["coordinator_error"] and "coordinator" in body["coordinator_error"]
    assert body["database"]["name"] == api.ctx.settings.postgres_db
    assert (body["connections"], body["tps"], body["uptime_seconds"]) == (None, None, None)
    assert body["nodes"]["total"] == 0  # the sampler has not run: no node seen yet


def test_charts_fall_back_to_the_sampler_when_prometheus_does_not_answer(api: Api):
    answer = api.client.get("/api/dashboard/timeseries?minutes=5", headers=api.session("viewer"))
    assert answer.status_code == 200
    body = answer.json()
    assert body["minutes"] == 5
    assert [(s["name"], s["source"], s["points"]) for s in body["series"]] == [
        (d.name, "sampler", []) for d in SERIES
    ]


def test_the_last_tpch_run_is_404_until_one_is_recorded(api: Api):
    headers = api.session("viewer")
    answer = api.client.get("/api/bench/tpch/latest", headers=headers)
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no TPC-H run recorded yet: run 'exapg bench tpch'"
    results = api.ctx.settings.state_dir / "results"
    results.mkdir(parents=True)
    (results / "tpch-latest.json").write_text("{not json", encoding="utf-8")
    answer = api.client.get("/api/bench/tpch/latest", headers=headers)
    assert answer.status_code == 404 and answer.json()["detail"].startswith("the last TPC-H result cannot be read")
    document = {"scale": 1, "geomean_ms": 12.5, "queries": [{"query": 1, "status": "ok"}]}
    (results / "tpch-latest.json").write_text(json.dumps(document), encoding="utf-8")
    answer = api.client.get("/api/bench/tpch/latest", headers=headers)
    assert (answer.status_code, answer.json()) == (200, document)


def test_every_answer_carries_the_security_headers(api: Api):
    answer = api.client.get("/api/health")
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "cdn.jsdelivr.net" not in answer.headers["content-security-policy"]
    docs = api.client.get("/docs")
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert "cache-control" not in docs.headers


def test_unknown_api_paths_are_json_404_and_others_the_front_end(api: Api):
    missing = api.client.get("/api/nothing/here")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    page = api.client.get("/users")  # a client-side route; the front end is not built here
    assert page.status_code == 200 and "front end is not built" in page.text
