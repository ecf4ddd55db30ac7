"""Docker mode: the coordinator given as DATABASE_URL (password from POSTGRES_PASSWORD),
secrets from the environment, and a first admin generated when none is configured."""

from __future__ import annotations

import logging
import re
import secrets

import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from exapg.api.app import create_app
from exapg.errors import ConfigurationError
from exapg.postgres.conn import connect
from exapg.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_database(ha_stack):
    name = f"mgmt_{secrets.token_hex(4)}"
    with connect(ha_stack.coordinator) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with connect(ha_stack.coordinator) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def docker_env(ha_stack, database: str, **extra: str) -> dict[str, str]:
    port = ha_stack.settings.coordinator_port
    return {
        "EXAPG_ENV_FILE": "/nonexistent/.env",
        "DATABASE_URL": f"postgresql://{ha_stack.settings.postgres_user}@127.0.0.1:{port}/{database}",
        "POSTGRES_DB": database,
        "POSTGRES_PASSWORD": ha_stack.password,
        "API_SECRET_KEY": secrets.token_urlsafe(40),
        "EXAPG_PROMETHEUS_URL": "http://127.0.0.1:9",
        **extra,
    }


def test_generated_first_admin_is_logged_once_and_works(ha_stack, fresh_database, caplog):
    env = docker_env(ha_stack, fresh_database)
    app = create_app(Settings.load(environ=env), environ=env)
    with caplog.at_level(logging.WARNING, logger="exapg.api.services.bootstrap"), TestClient(app) as client:
        found = re.search(r"generated password (\S+):", caplog.text)
        assert found, caplog.text
        login = client.post("/api/auth/login", json={"username": "admin", "password": found.group(1)})
        assert login.status_code == 200
        token = login.json()["access_token"]
        overview = client.get("/api/dashboard/overview", headers={"Authorization": f"Bearer {token}"})
        assert overview.json()["database"]["name"] == fresh_database
        cluster = client.get("/api/cluster", headers={"Authorization": f"Bearer {token}"}).json()
        assert [n["name"] for n in cluster["nodes"]] == ["coordinator", "standby"]  # found by the coordinator
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="exapg.api.services.bootstrap"), TestClient(create_app(
            Settings.load(environ=env), environ=env)):
        assert "generated password" not in caplog.text  # only the first start


def test_configured_admin_password_is_used(ha_stack, fresh_database):
    password = secrets.token_urlsafe(16)
    env = docker_env(ha_stack, fresh_database, EXAPG_ADMIN_PASSWORD=password)
    with TestClient(create_app(Settings.load(environ=env), environ=env)) as client:
        assert client.post("/api/auth/login",
                           json={"username": "admin", "password": password}).status_code == 200


def test_a_short_or_missing_secret_key_is_refused(ha_stack, fresh_database):
    for key in ("too-short", None):
        env = docker_env(ha_stack, fresh_database)
        env.pop("API_SECRET_KEY")
        if key:
            env["API_SECRET_KEY"] = key
        with pytest.raises(ConfigurationError, match="API_SECRET_KEY"):
            create_app(Settings.load(environ=env), environ=env)


def test_nodes_are_found_from_the_coordinator(ha_stack, fresh_database):
    """Docker mode knows only DATABASE_URL: the standby is found in pg_stat_replication and
    reached on EXAPG_STANDBY_NODE_PORT (5432 inside a compose network; here the local one)."""
    password = secrets.token_urlsafe(16)
    env = docker_env(ha_stack, fresh_database, EXAPG_ADMIN_PASSWORD=password,
                     EXAPG_STANDBY_NODE_PORT=str(ha_stack.settings.standby_port))
    with TestClient(create_app(Settings.load(environ=env), environ=env)) as client:
        token = client.post("/api/auth/login", json={"username": "admin", "password": password}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        nodes = {n["name"]: n for n in client.get("/api/cluster", headers=headers).json()["nodes"]}
        assert set(nodes) == {"coordinator", "standby"}
        assert nodes["standby"]["role"] == "standby" and nodes["standby"]["healthy"] is True, nodes["standby"]
        assert nodes["standby"]["port"] == ha_stack.settings.standby_port
        overview = client.get("/api/dashboard/overview", headers=headers).json()
        assert overview["nodes"]["up"] == 2 and overview["nodes"]["down"] == 0, overview["nodes"]
