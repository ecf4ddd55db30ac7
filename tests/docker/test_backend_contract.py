"""The management backend image's command, run here with the environment
docker-compose.mgmt.yml gives it (the coordinator replaced by a real scratch server):
it starts and its health check URL answers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.docker.compose import COMBINATIONS, render
from tests.docker.scratch import PASSWORD, free_port

DOCKERFILE = Path(__file__).resolve().parents[2] / "docker" / "Dockerfile.mgmt-backend"


def image_command() -> list[str]:
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD ")]
    return json.loads(lines[-1][4:])


def local_command(port: int) -> list[str]:
    command = image_command()
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    assert command[0] == "uvicorn"
    return [sys.executable, "-m", *command]


@pytest.mark.parametrize("admin", ["generated", "given"])  # generated first: no user exists yet
def test_backend_starts_with_the_compose_environment(scratch_pg, tmp_path, admin):
    service = render(COMBINATIONS["full"], tmp_path, POSTGRES_PASSWORD=PASSWORD, POSTGRES_DB="postgres",
                     **({"EXAPG_ADMIN_PASSWORD": ""} if admin == "generated" else {}))
    env = {k: str(v) for k, v in service["services"]["management_backend"]["environment"].items()}
    env["DATABASE_URL"] = env["DATABASE_URL"].replace("coordinator:5432", f"127.0.0.1:{scratch_pg.port}")
    env["EXAPG_PROMETHEUS_URL"] = "http://127.0.0.1:9"  # nothing listens: the API must cope
    env.update({"PATH": "/usr/bin:/bin", "EXAPG_ENV_FILE": "/nonexistent/.env", "HOME": str(tmp_path)})
    port = free_port()
    proc = subprocess.Popen(local_command(port), env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=4) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"backend did not serve /api/health: {proc.communicate()[0][-2000:]}")
                time.sleep(0.3)
        assert body["status"] == "ok" and body["database"]["ok"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=15)
