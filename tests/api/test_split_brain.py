"""A standby promoted by hand while its primary runs on: the cluster view shows the split,
from the local stack and in Docker mode (nodes found from the coordinator)."""

from __future__ import annotations

import secrets

import pytest
from fastapi.testclient import TestClient

from exapg.api.app import create_app
from exapg.cluster.roles import RoleChangeKind, record_role_change
from exapg.postgres.conn import connect
from exapg.settings import Settings

pytestmark = pytest.mark.integration


def assert_split(body: dict) -> None:
    nodes = {n["name"]: n for n in body["nodes"]}
    roles = {name: (n["configured_role"], n["observed_role"], n["timeline"]) for name, n in nodes.items()}
    assert roles == {"coordinator": ("primary", "primary", 1), "standby": ("standby", "primary", 2)}
    assert nodes["standby"]["healthy"] is False and "promoted" in nodes["standby"]["error"]
    assert body["split_brain"] is True
    assert body["split_brain_nodes"] == [{"name": "coordinator", "timeline": 1},
                                         {"name": "standby", "timeline": 2}]
    assert body["pooler_target"] == "coordinator"


def docker_env(stack) -> dict[str, str]:
    settings = stack.settings
    return {
        "EXAPG_ENV_FILE": "/nonexistent/.env",
        "DATABASE_URL": f"postgresql://{settings.postgres_user}@127.0.0.1:{settings.coordinator_port}"
                        f"/{settings.postgres_db}",
        "POSTGRES_DB": settings.postgres_db,
        "POSTGRES_PASSWORD": stack.password,
        "EXAPG_STANDBY_NODE_PORT": str(settings.standby_port),
        "API_SECRET_KEY": secrets.token_urlsafe(40),
        "EXAPG_PROMETHEUS_URL": "http://127.0.0.1:9",
    }


def test_the_cluster_view_shows_two_writable_primaries(own_api, monkeypatch):
    monkeypatch.setattr("exapg.api.access.DISCOVERY_TTL", 0.0)  # Docker mode: look again every request
    env = docker_env(own_api.stack)
    with TestClient(create_app(Settings.load(environ=env), environ=env)) as docker, \
            own_api.client(own_api.token("admin", own_api.admin_password)) as local:
        token = docker.post("/api/auth/login", json={"username": "admin", "password": own_api.admin_password})
        docker.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        assert [n["name"] for n in docker.get("/api/cluster").json()["nodes"]] == ["coordinator", "standby"]
        own_api.stack.standby_server.promote()
        assert_split(local.get("/api/cluster").json())
        # the promoted standby no longer streams from the coordinator, which found it there
        assert_split(docker.get("/api/cluster").json())
        assert local.get("/api/cluster").json()["latest_role_change"] is None  # nothing recorded, no table
        # a record on the promoted side only (each side of a split has its own) is found
        with connect(own_api.stack.standby) as conn:
            record_role_change(conn, kind=RoleChangeKind.FAILOVER, from_server="coordinator", to_server="standby")
        change = local.get("/api/cluster").json()["latest_role_change"]
        assert (change["kind"], change["from_server"], change["to_server"], change["timeline"]) == (
            "failover", "coordinator", "standby", 2)
