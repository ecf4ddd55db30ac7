"""With the coordinator down (where the users live), logged-in sessions keep working
read-only: the UI shows the nodes and the outage at once, writes answer 503 with a
clear message, and all is back to normal when the coordinator returns."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from exapg.api.core.db import POOL_WAIT
from tests.api.fixtures import unique_name

pytestmark = pytest.mark.integration
OUTAGE = 30  # seconds the coordinator stays down after the first checks
BACK_WITHIN = 8.0  # seconds after its return within which all works again


def timed(client: httpx.Client, method: str, path: str, **kwargs) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = client.request(method, path, **kwargs)
    return answer, time.monotonic() - started


def until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_sessions_stay_read_only_while_the_coordinator_is_down(own_api):
    admin_token = own_api.token("admin", own_api.admin_password)
    name, password = unique_name("ro"), f"{secrets.token_urlsafe(16)}-Aa1"
    with own_api.client(admin_token) as admin:
        assert admin.post("/api/users", json={"username": name, "password": password}).status_code == 201
    viewer_token = own_api.token(name, password)
    own_api.stack.coordinator_server.stop(timeout=60)
    try:
        with own_api.client(admin_token) as admin, own_api.client(viewer_token) as viewer:
            for client in (admin, viewer):
                me, took = timed(client, "GET", "/api/auth/me")
                assert me.status_code == 200 and took < POOL_WAIT, (me.text, took)
            cluster, took = timed(viewer, "GET", "/api/cluster")
            assert cluster.status_code == 200 and took < POOL_WAIT, (cluster.text, took)
            nodes = {n["name"]: n for n in cluster.json()["nodes"]}
            # the standby still answers (in recovery); whether it counts as healthy is the
            # standby rule's business (not streaming from a stopped primary: unhealthy)
            assert nodes["coordinator"]["state"] == "down" and nodes["standby"]["state"] == "standby"
            overview, took = timed(viewer, "GET", "/api/dashboard/overview")
            assert overview.status_code == 200 and took < POOL_WAIT, (overview.text, took)
            assert overview.json()["coordinator_error"]
            items = {n["name"]: n["healthy"] for n in overview.json()["nodes"]["items"]}
            assert set(items) == {"coordinator", "standby"} and items["coordinator"] is False
            write, took = timed(admin, "POST", "/api/users",
                                json={"username": unique_name("no"), "password": password})
            assert write.status_code == 503 and took < POOL_WAIT, (write.text, took)
            assert "coordinator is down" in write.json()["detail"]
            assert admin.post("/api/auth/logout").status_code == 503
            # the forged and the garbage still get nothing
            with own_api.client("not-a-token") as stranger:
                assert stranger.get("/api/cluster").status_code == 401
            # a longer outage: every read stays quick (and the pools' reconnection tries
            # must not back off so far that the coordinator's return goes unseen)
            for _ in range(OUTAGE):
                cluster, took = timed(viewer, "GET", "/api/cluster")
                assert cluster.status_code == 200 and took < POOL_WAIT, (cluster.text, took)
                time.sleep(1)
    finally:
        own_api.stack.coordinator_server.start(timeout=60)
    with own_api.client(admin_token) as admin:
        back = until(lambda: admin.get("/api/dashboard/overview").json().get("coordinator_error") is None,
                     timeout=BACK_WITHIN)
        assert back, "the overview still reports the coordinator down"
        created = until(lambda: admin.post("/api/users", json={
            "username": unique_name("back"), "password": password}).status_code == 201, timeout=BACK_WITHIN)
        assert created, "writes did not come back with the coordinator"
