"""Commands without a Docker implementation refuse under the Docker backend (exit 2, one
line) instead of acting on a local stack; none of these calls needs an engine."""

from __future__ import annotations

import json

import pytest

from tests.conftest import new_state_dir, run_cli, stack_environment

LOCAL_ONLY = [["bench", "pgbench", "--time", "1"], ["backup"], ["backup", "list"], ["backup", "verify"],
              ["backup", "restore-point", "p1"], ["restore", "latest", "--yes"]]
CITUS_ON_DOCKER = [["rebalance"], ["distribute", "t", "--column", "id"], ["reference", "t"], ["columnar", "t"],
                   ["sample", "tpch", "--sf", "0.01"], ["bench", "tpch", "--queries", "1"]]


@pytest.mark.parametrize("args", LOCAL_ONLY, ids=lambda a: " ".join(a[:2]))
def test_local_only_commands_refuse_the_docker_backend(args):
    env = stack_environment(new_state_dir(), EXAPG_BACKEND="docker")
    done = run_cli(*args, env=env, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "works on the local runtime only and the backend is docker" in line
    assert f"'exapg {args[0]}" in line


def test_an_explicit_local_backend_wins_over_the_environment():
    env = stack_environment(new_state_dir(), EXAPG_BACKEND="docker")
    done = run_cli("status", "--backend", "local", "--json", env=env, timeout=60)
    # the local runtime answered (about its stack, which was never set up), not Compose
    assert done.returncode == 1 and "has been set up" in done.stderr, done.stderr


@pytest.mark.parametrize("args", CITUS_ON_DOCKER, ids=lambda a: " ".join(a[:2]))
def test_citus_commands_go_to_the_docker_coordinator(args):
    """No container runs here: the command reaches for the Docker stack's published
    coordinator port, not for a local stack."""
    env = stack_environment(new_state_dir(), EXAPG_BACKEND="docker", POSTGRES_PASSWORD="Docker-Only-Pw-1")
    done = run_cli(*args, env=env, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"127.0.0.1:{env['COORDINATOR_PORT']}" in done.stderr or env["COORDINATOR_PORT"] in done.stderr
    assert "has been set up" not in done.stderr  # the local runtime was never asked


def test_docker_credentials_come_from_the_settings_compose_gets():
    env = stack_environment(new_state_dir(), EXAPG_BACKEND="docker", POSTGRES_PASSWORD="Docker:Only/Pw-1")
    done = run_cli("credentials", "--json", env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["password"] == "Docker:Only/Pw-1"
    assert found["coordinator_url"] == f"postgresql://postgres:Docker%3AOnly%2FPw-1@127.0.0.1:{env['COORDINATOR_PORT']}/exadb"
    assert found["pgbouncer_url"].endswith(f"@127.0.0.1:{env['PGBOUNCER_PORT']}/exadb")
