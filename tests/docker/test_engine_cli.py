"""`exapg up|status|health|logs|down --backend docker` drive a real Compose project and
tell the truth about it; cluster mode without Citus in the image refuses in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docker.engine import docker, project, wait_for

pytestmark = pytest.mark.timeout(900)
EXAPG = [sys.executable, "-m", "exapg.cli.main"]
REPO = Path(__file__).resolve().parents[2]


def exapg(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "EXAPG_ENV_FILE": "/nonexistent/.env", "EXAPG_BACKEND": "docker"}
    return subprocess.run([*EXAPG, *args], env=full, capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=REPO)


def test_exapg_commands_drive_and_report_a_docker_stack(tmp_path):
    dirs = {"EXAPG_DATA_DIR": str(tmp_path / "data"), "EXAPG_CONFIG_DIR": str(tmp_path / "config"),
            "EXAPG_LOG_DIR": str(tmp_path / "logs")}
    with project(["docker-compose.yml", "docker-compose.prod.yml", "docker-compose.ha.yml"], **dirs) as stack:
        env = {k: v for k, v in stack.env.items() if k not in ("PATH", "HOME")}
        started = exapg(["up", "--mode", "ha"], env)
        assert started.returncode == 0, started.stderr
        assert f"made {tmp_path / 'data' / 'coordinator'}" in started.stdout
        started_line = started.stdout.strip().splitlines()[-1]
        head, _, started_services = started_line.partition(": ")
        assert head.endswith("docker compose up (prod, ha)"), started_line
        assert set(started_services.split(", ")) == {"coordinator", "standby", "replication_exporter", "pgbouncer"}

        def healthy() -> dict | None:
            done = exapg(["health", "--json"], env, timeout=120)
            report = json.loads(done.stdout)
            return report if done.returncode == 0 and report["healthy"] else None

        report = wait_for(healthy, 240, "exapg health to pass", interval=3)
        names = {s["name"] for s in report["services"]}
        assert {f"{stack.name}_coordinator", f"{stack.name}_standby", f"{stack.name}_pgbouncer",
                f"{stack.name}_replication_exporter"} <= names

        assert exapg(["sql", "-c", "SELECT 40 + 2"], env).stdout.split()[2] == "42"
        pooled = exapg(["sql", "pgbouncer", "-c", "SELECT client_addr FROM pg_stat_activity "
                        "WHERE pid = pg_backend_pid()"], env)
        assert pooled.returncode == 0, pooled.stderr
        assert f"{stack.env['EXAPG_IP_PREFIX']}.0.30" in pooled.stdout  # the server saw pgBouncer
        found = json.loads(exapg(["credentials", "--json"], env).stdout)
        import psycopg

        with psycopg.connect(found["coordinator_url"], connect_timeout=5) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        restarted = exapg(["restart"], env)
        assert restarted.returncode == 0, restarted.stderr
        wait_for(healthy, 240, "exapg health after restart", interval=3)

        docker("stop", stack.container("standby"))
        sick = exapg(["health"], env, timeout=120)
        assert sick.returncode == 1 and f"{stack.name}_standby is unhealthy" in sick.stdout + sick.stderr
        listed = json.loads(exapg(["status", "--json"], env, timeout=120).stdout)
        assert {s["name"]: s["state"] for s in listed}[f"{stack.name}_standby"] == "stopped"

        logs = exapg(["logs", "coordinator"], env, timeout=120)
        # the production file sends the server's own log to files; the container log has its start
        assert logs.returncode == 0 and "exapg-entrypoint: initialising" in logs.stdout, logs.stdout[-2000:]
        assert "redirecting log output to logging collector process" in logs.stdout

        assert exapg(["down"], env).returncode == 0
        assert stack.compose("ps", "-q").stdout.split() == []
        assert (tmp_path / "data" / "coordinator" / "PG_VERSION").is_file()  # down keeps the data


@pytest.fixture(scope="module")
def image_without_citus() -> str:
    """exapg/postgres built with CITUS_SOURCE=none (cheap: the builder's compile is skipped),
    and the other images under the same tag."""
    tag = "nocitus"
    result = subprocess.run(["docker", "build", "-q", "--target", "runtime", "--build-arg", "CITUS_SOURCE=none",
                             "--build-arg", f"BASE_IMAGE={base_image()}", "-t", f"exapg/postgres:{tag}",
                             "-f", "docker/Dockerfile", "."], cwd=REPO, capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("pgbouncer", "replication-exporter", "mgmt-backend", "mgmt-frontend"):
        docker("tag", f"exapg/{name}:latest", f"exapg/{name}:{tag}")
    yield tag
    for name in ("postgres", "pgbouncer", "replication-exporter", "mgmt-backend", "mgmt-frontend"):
        docker("rmi", f"exapg/{name}:{tag}", check=False)


def base_image() -> str:
    found = docker("image", "inspect", "--format", '{{index .Config.Labels "org.exapg.base"}}',
                   "exapg/postgres:latest").stdout.strip()
    return found if found and found != "<no value>" else "exapg/debian:bookworm"


def test_cluster_mode_without_citus_in_the_image_exits_4_in_one_line(image_without_citus, tmp_path):
    with project(["docker-compose.yml", "docker-compose.override.yml"], EXAPG_VERSION=image_without_citus) as stack:
        env = {k: v for k, v in stack.env.items() if k not in ("PATH", "HOME")}
        refused = exapg(["up", "--mode", "cluster"], env)
        assert refused.returncode == 4, refused.stdout + refused.stderr
        assert "built without Citus" in refused.stderr and "--citus-source" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert stack.compose("ps", "-q").stdout.split() == []  # nothing started
        # the same image runs standalone as plain PostgreSQL
        stack.compose("up", "-d", "coordinator")
        stack.wait_healthy("coordinator")
        with stack.connect() as conn:
            assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'citus'").fetchone() == (0,)


def test_tpch_sample_and_bench_run_against_the_docker_coordinator(tmp_path):
    """`exapg sample tpch` and `exapg bench tpch` with the Docker backend: DuckDB's data
    streamed in by COPY through the published port, answers checked."""
    with project(["docker-compose.yml", "docker-compose.override.yml"]) as stack:
        stack.compose("up", "-d", "coordinator")
        stack.wait_healthy("coordinator")
        env = {k: v for k, v in stack.env.items() if k not in ("PATH", "HOME")}
        env["EXAPG_STATE_DIR"] = str(tmp_path / "state")
        loaded = exapg(["sample", "tpch", "--sf", "0.01", "--json"], env)
        assert loaded.returncode == 0, loaded.stderr
        assert json.loads(loaded.stdout)["rows"]["lineitem"] == 60175
        ran = exapg(["bench", "tpch", "--queries", "1,6", "--repeat", "1", "--json"], env)
        assert ran.returncode == 0, ran.stderr
        report = json.loads(ran.stdout)
        assert report["checked"] and {r["status"] for r in report["results"]} == {"ok"}, report["results"]
        assert report["result_file"].startswith(str(tmp_path / "state"))
