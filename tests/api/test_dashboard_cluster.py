"""Dashboard and cluster views show the real stack."""

from __future__ import annotations

import time

import pytest

from exapg.postgres.conn import connect

pytestmark = pytest.mark.integration


def test_overview_numbers_match_the_stack(admin, api_server):
    settings = api_server.stack.settings
    with connect(api_server.stack.coordinator) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    body = admin.get("/api/dashboard/overview").json()
    assert body["database"]["name"] == settings.postgres_db
    assert abs(body["database"]["size_bytes"] - size) < 16 * 1024 * 1024
    assert body["connections"]["total"] >= 1 and body["connections"]["max"] > 0
    assert 0 < body["cache_hit_ratio"] <= 1
    assert body["uptime_seconds"] > 0
    assert body["nodes"] | {"items": None} == body["nodes"] | {"items": None}
    assert (body["nodes"]["up"], body["nodes"]["down"]) == (2, 0)
    assert [r["name"] for r in body["replication"]] == ["standby"]
    assert body["replication"][0]["state"] == "streaming"
    assert body["pgbouncer_pools"] is not None
    assert any(p["database"] == settings.postgres_db for p in body["pgbouncer_pools"])


def test_tps_reflects_load(admin, api_server):
    """Backends flush their counters at most once a second, so look at the sampled series."""
    with connect(api_server.stack.coordinator) as conn:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            conn.execute("SELECT 1")
    time.sleep(2.5)
    series = admin.get("/api/dashboard/timeseries", params={"minutes": 1}).json()["series"]
    tps = next(s for s in series if s["name"] == "tps")
    assert max(v or 0 for _, v in tps["points"]) > 50
    assert admin.get("/api/dashboard/overview").json()["tps"] >= 0


def test_timeseries_are_sampled_without_prometheus(admin):
    time.sleep(2.5)
    body = admin.get("/api/dashboard/timeseries", params={"minutes": 5}).json()
    series = {s["name"]: s for s in body["series"]}
    assert {"tps", "connections", "cache_hit_ratio", "replication_lag_seconds"} <= set(series)
    assert series["connections"]["source"] == "sampler"
    assert len(series["connections"]["points"]) >= 2
    assert all(v is not None and v >= 1 for _, v in series["connections"]["points"])


def test_cluster_lists_every_node_with_replication(admin, api_server):
    body = admin.get("/api/cluster").json()
    assert body["mode"] == "ha"
    nodes = {n["name"]: n for n in body["nodes"]}
    coordinator, standby = nodes["coordinator"], nodes["standby"]
    assert coordinator["state"] == "primary" and coordinator["healthy"]
    assert coordinator["port"] == api_server.stack.settings.coordinator_port
    assert coordinator["version"].startswith("15")
    assert coordinator["size_bytes"] > 0
    assert [d["name"] for d in coordinator["downstream"]] == ["standby"]
    assert standby["state"] == "standby" and standby["healthy"]
    assert standby["upstream"]["status"] == "streaming"
    assert standby["upstream"]["sender_port"] == api_server.stack.settings.coordinator_port
    assert standby["upstream"]["lag_bytes"] is not None
    services = {s["name"]: s for s in body["services"]}
    assert services["pgbouncer"]["state"] == "running"


def test_idle_primary_shows_no_replication_lag(admin):
    time.sleep(1.5)
    nodes = {n["name"]: n for n in admin.get("/api/cluster").json()["nodes"]}
    upstream = nodes["standby"]["upstream"]
    if upstream["lag_bytes"] == 0:
        assert upstream["lag_seconds"] == 0
