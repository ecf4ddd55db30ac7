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
    assert_nodes_match_the_topology(body["nodes"], api_server.stack.runtime.stack.topology)
    assert [r["name"] for r in body["replication"]] == ["standby"]
    assert body["replication"][0]["state"] == "streaming"
    assert body["pgbouncer_pools"] is not None
    assert any(p["database"] == settings.postgres_db for p in body["pgbouncer_pools"])


def assert_nodes_match_the_topology(nodes, topology):
    """Every node of the stack (here the coordinator and its standby), each healthy, in
    the role and state it really has; the counts agree with the items."""
    expected = {n.name: (str(n.role), "standby" if n.is_standby else "primary") for n in topology.nodes}
    assert set(expected) == {"coordinator", "standby"}
    items = {i["name"]: i for i in nodes["items"]}
    assert len(items) == len(nodes["items"]), "a node is listed twice"
    assert {name: (i["role"], i["state"]) for name, i in items.items()} == expected
    assert all(i["healthy"] for i in items.values()), items
    assert (nodes["up"], nodes["down"], nodes["total"]) == (len(expected), 0, len(expected))
    assert nodes["checked_at"] is not None and time.time() - nodes["checked_at"] < 30


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
    roles = [(n["configured_role"], n["observed_role"], n["timeline"]) for n in (coordinator, standby)]
    assert roles == [("primary", "primary", 1), ("standby", "standby", 1)]
    assert body["split_brain"] is False and body["split_brain_nodes"] == []
    assert body["pooler_target"] == "coordinator"
    services = {s["name"]: s for s in body["services"]}
    assert services["pgbouncer"]["state"] == "running"


def test_idle_primary_shows_no_replication_lag(admin, api_server):
    """The specification's `now() - pg_last_xact_replay_timestamp()` grows while the primary is
    idle; ours is zero once the standby has replayed all the primary wrote. Other WAL
    (checkpoints, autovacuum) may come at any time, so wait, bounded, for a reading in
    which the standby has caught up and its last replayed commit is old enough for the
    specification's formula to show seconds of lag."""
    with connect(api_server.stack.coordinator) as conn:
        conn.execute("SELECT txid_current()")  # a commit for the standby to replay
    readings = []
    deadline = time.monotonic() + 60
    with connect(api_server.stack.standby) as standby:
        while True:
            seed_lag = standby.execute(
                "SELECT extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8"
            ).fetchone()[0]
            nodes = {n["name"]: n for n in admin.get("/api/cluster").json()["nodes"]}
            upstream = nodes["standby"]["upstream"]
            readings.append((seed_lag, upstream["lag_bytes"], upstream["lag_seconds"]))
            if upstream["lag_bytes"] == 0 and seed_lag is not None and seed_lag >= 2:
                break
            assert time.monotonic() < deadline, f"never idle and caught up: {readings[-5:]}"
            time.sleep(0.5)
    assert upstream["status"] == "streaming"
    assert upstream["lag_seconds"] == 0, readings[-1]
