"""The exapg/postgres entrypoint's pieces, run by bash against a real PostgreSQL: the
pgpass nodes use between them, TLS material, and the standby's first clone."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from exapg.certs import generate
from exapg.postgres import conf, passfile
from tests.docker.image_tree import worker_python_tree
from tests.docker.scratch import PASSWORD, as_service_user, free_port, give, image_conf

ENTRYPOINT = Path(__file__).resolve().parents[2] / "docker" / "postgres" / "exapg-entrypoint.sh"


@functools.cache
def image_python() -> Path:
    """The ExaPG files the image copies to /opt/exapg, where the service user can read them."""
    tree = Path(tempfile.mkdtemp(prefix="exapg-image-python-"))
    atexit.register(shutil.rmtree, tree, True)
    tree.chmod(0o755)
    return worker_python_tree(tree / "opt-exapg")


def call(functions: str, env: dict[str, str], bindir: Path) -> subprocess.CompletedProcess[str]:
    """Source the entrypoint and run `functions` as the service user, with the image's Python."""
    full = {"PATH": f"{bindir}:/usr/bin:/bin", "LANG": "C", "POSTGRES_USER": "postgres",
            "EXAPG_PYTHON": "/usr/bin/python3", "EXAPG_PYTHONPATH": str(image_python()), **env}
    return subprocess.run(["bash", "-c", f'source "$1" && {functions}', "exapg-test", str(ENTRYPOINT)], env=full,
                          capture_output=True, text=True, timeout=120, check=False, **as_service_user())


def service_owned(tmp: Path) -> Path:
    tmp.chmod(0o755)
    give(tmp)
    return tmp


@pytest.mark.parametrize("source", ["POSTGRES_PASSWORD", "POSTGRES_PASSWORD_FILE"])
def test_pgpass_lets_nodes_authenticate(scratch_pg, tmp_path, source):
    tmp = service_owned(tmp_path)
    env = {"EXAPG_RUNTIME_DIR": str(tmp / "run"), "PGPASSFILE": str(tmp / "run" / "pgpass")}
    if source == "POSTGRES_PASSWORD":
        env["POSTGRES_PASSWORD"] = PASSWORD  # contains ':' which pgpass must escape
    else:
        (tmp / "secret").write_text(PASSWORD)
        give(tmp)
        env["POSTGRES_PASSWORD_FILE"] = str(tmp / "secret")
    check = (f"write_pgpass && psql -X -w -A -t -h 127.0.0.1 -p {scratch_pg.port} -d postgres "
             "-c 'select current_user'")
    result = call(check, env, scratch_pg.bindir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "postgres"
    assert stat.S_IMODE((tmp / "run" / "pgpass").stat().st_mode) == 0o600
    assert (tmp / "run" / "pgpass").read_text() == passfile.render([("postgres", PASSWORD)])


def test_pgpass_needs_a_password(scratch_pg, tmp_path):
    tmp = service_owned(tmp_path)
    result = call("write_pgpass", {"EXAPG_RUNTIME_DIR": str(tmp)}, scratch_pg.bindir)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="handing the key to the postgres user needs root")
def test_tls_material_is_copied_with_modes_postgres_accepts(scratch_pg, tmp_path):
    tmp = service_owned(tmp_path)
    entry = shutil.os.stat(scratch_pg.root)
    files = generate(tmp / "ssl", hostnames=["localhost"], days=30, owner=(entry.st_uid, entry.st_gid))
    (tmp / "ssl").chmod(0o755)
    env = {"EXAPG_RUNTIME_DIR": str(tmp / "run"), "POSTGRES_SSL": "on",
           "POSTGRES_SSL_CERT_FILE": str(files.server_cert), "POSTGRES_SSL_KEY_FILE": str(files.server_key),
           "POSTGRES_SSL_CA_FILE": str(files.ca_cert)}
    result = call("tls_args", env, scratch_pg.bindir)
    assert result.returncode == 0, result.stderr
    args = result.stdout.split("\n")
    assert args[:2] == ["-c", "ssl=on"]
    key = tmp / "run" / "ssl" / "server.key"
    assert f"ssl_key_file={key}" in args
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert call("tls_args", {"EXAPG_RUNTIME_DIR": str(tmp / "run")}, scratch_pg.bindir).stdout == ""


TLS_REQUIRED = {"POSTGRES_SSL": "on", "POSTGRES_SSL_REQUIRE": "on", "EXAPG_NETWORK": "172.29.0.0/16",
                "EXAPG_GATEWAY": "172.29.0.1"}


def test_tls_required_hba_is_rendered_by_exapg(scratch_pg, tmp_path):
    tmp = service_owned(tmp_path)
    result = call("hba_args", {"EXAPG_RUNTIME_DIR": str(tmp), **TLS_REQUIRED}, scratch_pg.bindir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["-c", f"hba_file={tmp / 'pg_hba.conf'}"]
    assert (tmp / "pg_hba.conf").read_text() == conf.render_hba(
        "all", ("127.0.0.1/32", "172.29.0.0/16"), conf.TLS_HBA_NOTE, tls_from=("172.29.0.1/32",))
    assert stat.S_IMODE((tmp / "pg_hba.conf").stat().st_mode) == 0o600


def test_a_tls_hba_that_cannot_be_written_stops_the_start(scratch_pg, tmp_path):
    """Fail closed: without it the server would start with the file that admits plain clients."""
    tmp = service_owned(tmp_path)
    env = {"EXAPG_RUNTIME_DIR": str(tmp), "EXAPG_PYTHON": "/bin/false", **TLS_REQUIRED}
    result = call('hba=$(hba_args); echo "went on"', env, scratch_pg.bindir)
    assert result.returncode != 0 and "went on" not in result.stdout
    assert "cannot write" in result.stderr


def test_standby_clones_the_primary_through_its_slot(scratch_pg, tmp_path):
    tmp = service_owned(tmp_path)
    clone = tmp / "clone"
    env = {"EXAPG_RUNTIME_DIR": str(tmp / "run"), "POSTGRES_PASSWORD": PASSWORD, "CITUS_ROLE": "standby",
           "PRIMARY_HOST": "127.0.0.1", "PRIMARY_PORT": str(scratch_pg.port), "POSTGRES_DB": "postgres",
           "EXAPG_STANDBY_SLOT": "exapg_test_standby", "PGDATA": str(clone)}
    result = call("write_pgpass && clone_primary && clone_primary", env, scratch_pg.bindir)  # twice: idempotent
    assert result.returncode == 0, result.stderr
    assert (clone / "standby.signal").exists()
    assert "primary_slot_name = 'exapg_test_standby'" in (clone / "postgresql.auto.conf").read_text()
    conf = image_conf(tmp)
    give(tmp)
    port = free_port()
    user = as_service_user()
    subprocess.run([str(scratch_pg.bindir / "pg_ctl"), "-D", str(clone), "-w", "-t", "60", "-l", str(tmp / "log"),
                    "-o", f"-c config_file={conf} -p {port}", "start"], capture_output=True, check=True,
                   timeout=90, **user)
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} dbname=postgres user=postgres", password=PASSWORD) as c:
            assert c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        with psycopg.connect(scratch_pg.conninfo, password=PASSWORD) as primary:
            row = primary.execute("SELECT active FROM pg_replication_slots WHERE slot_name = 'exapg_test_standby'")
            assert row.fetchone() is not None
    finally:
        subprocess.run([str(scratch_pg.bindir / "pg_ctl"), "-D", str(clone), "-m", "fast", "stop"],
                       capture_output=True, check=False, timeout=60, **user)
        with psycopg.connect(scratch_pg.conninfo, password=PASSWORD, autocommit=True) as primary:
            primary.execute("SELECT pg_drop_replication_slot('exapg_test_standby')")
