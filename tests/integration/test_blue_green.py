"""The blue-green switch of docs/docker.md, as the same sequence of `exapg` commands run by
the local runtime (Docker runs the same commands with EXAPG_BACKEND=docker): two projects
from docker/env/{blue,green}.env.example side by side; start green, check its health, move
the data, switch clients to green's pgBouncer, stop blue; blue's data is kept."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from exapg.postgres.binaries import find_binaries
from tests.conftest import free_port, new_state_dir, run_cli

pytestmark = pytest.mark.integration

ENV_DIR = Path(__file__).resolve().parents[2] / "docker" / "env"
PORTS = ("COORDINATOR_PORT", "STANDBY_PORT", "PGBOUNCER_PORT", "EXPORTER_PORT", "PROMETHEUS_PORT",
         "POSTGRES_EXPORTER_PORT", "MGMT_BACKEND_PORT", "MGMT_FRONTEND_PORT", "GRAFANA_PORT")


def project(color: str, tmp_path: Path) -> dict[str, str]:
    """The example's settings as an env file; the machine's free ports and a temporary state
    directory given in the environment (which wins over the file, as for any setting)."""
    env_file = tmp_path / f"{color}.env"
    env_file.write_text((ENV_DIR / f"{color}.env.example").read_text())
    env = {"EXAPG_ENV_FILE": str(env_file), "EXAPG_STATE_DIR": str(new_state_dir()),
           "EXAPG_MEMORY_LIMIT": "1GB", "EXAPG_START_TIMEOUT": "60"}
    return env | {name: str(free_port()) for name in PORTS}


def exapg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = run_cli(*args, env=env, timeout=300)
    assert result.returncode == 0, f"exapg {' '.join(args)}: {result.stderr}"
    return result


def url(env: dict[str, str], key: str = "coordinator_url") -> str:
    return str(json.loads(exapg(env, "credentials", "--json").stdout)[key])


def test_the_blue_green_switch(tmp_path):
    blue, green = project("blue", tmp_path), project("green", tmp_path)
    try:
        exapg(blue, "up", "--mode", "ha")
        with psycopg.connect(url(blue), autocommit=True) as conn:
            conn.execute("CREATE TABLE orders AS SELECT g AS id, g * 3 AS total FROM generate_series(1, 5000) g")
        statuses = json.loads(exapg(blue, "status", "--json").stdout)
        assert {s["name"] for s in statuses} >= {"coordinator", "standby", "pgbouncer"}

        exapg(green, "up", "--mode", "ha")                      # 1. start green
        exapg(green, "health")                                   # 2. green healthy (exit 0)
        bins = find_binaries()                                   # 3. move the data
        # the application's data: each stack keeps its own management and exporter schemas
        dump = subprocess.run([str(bins("pg_dump")), "--no-owner", "--exclude-schema=exapg_*", url(blue)],
                              capture_output=True, text=True, timeout=120, check=True)
        restore = subprocess.run([str(bins("psql")), "-X", "-q", "-v", "ON_ERROR_STOP=1", url(green)],
                                 input=dump.stdout, capture_output=True, text=True, timeout=120, check=False)
        assert restore.returncode == 0, restore.stderr
        with psycopg.connect(url(green, "pgbouncer_url")) as conn:  # 4. clients now use green's pgBouncer
            assert conn.execute("SELECT count(*), sum(total) FROM orders").fetchone() == (5000, 3 * 12_502_500)
        exapg(blue, "stop")                                      # 5. stop blue, data kept
        exapg(green, "health")
        assert run_cli("health", env=blue).returncode == 1
        assert (Path(blue["EXAPG_STATE_DIR"]) / "data" / "coordinator" / "PG_VERSION").is_file()
        names = {json.loads(exapg(c, "config", "show", "--json").stdout)["COMPOSE_PROJECT_NAME"] for c in (blue, green)}
        assert names == {"exapg_blue", "exapg_green"}
    finally:
        for env in (green, blue):
            run_cli("down", "--volumes", env=env, timeout=300)


def test_the_same_commands_drive_docker(tmp_path):
    """With EXAPG_BACKEND=docker the sequence goes to Compose with the env file; without an
    engine each step stops at once, exit 4, saying so (what a Docker host runs)."""
    green = project("green", tmp_path) | {"EXAPG_BACKEND": "docker", "DOCKER_HOST": "unix:///nonexistent.sock",
                                          "POSTGRES_PASSWORD": "Gr33n-Pass-For-Tests", "API_SECRET_KEY": "k" * 40,
                                          "PATH": os.environ["PATH"]}
    for args in (["up", "--mode", "ha"], ["health"], ["stop"]):
        result = run_cli(*args, env=green)
        assert result.returncode == 4, (args, result.stderr)
        assert "Docker engine" in result.stderr and len(result.stderr.strip().splitlines()) == 1
