"""The specification's backup commands (docs/docker.md, "Backups") against a server run with the
image's configuration and authenticated by the pgpass the image's entrypoint writes:
pg_dump over the local socket, pg_basebackup -Ft -z, and a tar of a stopped data
directory, each restored and read back. Only `docker-compose exec` / `docker run` around
them need a Docker host."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.docker.scratch import PASSWORD, as_service_user, free_port, give, image_conf
from tests.docker.test_entrypoint import call, service_owned

ROWS = 2_500


@pytest.fixture(scope="module")
def exadb(scratch_pg):
    with psycopg.connect(scratch_pg.conninfo, password=PASSWORD, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS exadb")
        conn.execute("CREATE DATABASE exadb")
    with psycopg.connect(scratch_pg.conninfo.replace("dbname=postgres", "dbname=exadb"), password=PASSWORD,
                         autocommit=True) as conn:
        conn.execute("CREATE TABLE facts (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO facts SELECT g, md5(g::text) FROM generate_series(1, %s) g", (ROWS,))
        return conn.execute("SELECT count(*), sum(hashtext(note)) FROM facts").fetchone()


def in_container(scratch_pg, tmp: Path, command: str) -> subprocess.CompletedProcess[str]:
    """`command` as the image runs an exec'd one: the entrypoint's pgpass, the local socket."""
    env = {"EXAPG_RUNTIME_DIR": str(tmp / "run"), "PGPASSFILE": str(tmp / "run" / "pgpass"),
           "POSTGRES_PASSWORD": PASSWORD, "PGHOST": str(scratch_pg.root), "PGPORT": str(scratch_pg.port)}
    return call(f"write_pgpass && {command}", env, scratch_pg.bindir)


def test_pg_dump_restores_into_a_new_database(scratch_pg, exadb, tmp_path):
    tmp = service_owned(tmp_path)
    dump = in_container(scratch_pg, tmp, "pg_dump -w -U postgres exadb")
    assert dump.returncode == 0, dump.stderr
    assert "CREATE TABLE public.facts" in dump.stdout
    backup = tmp / "backup.sql"
    backup.write_text(dump.stdout)
    give(backup)
    restore = in_container(scratch_pg, tmp, "createdb -w -U postgres restored && "
                           f"psql -X -w -q -v ON_ERROR_STOP=1 -U postgres -d restored -f {backup}")
    assert restore.returncode == 0, restore.stderr
    with psycopg.connect(scratch_pg.conninfo.replace("dbname=postgres", "dbname=restored"),
                         password=PASSWORD) as conn:
        assert conn.execute("SELECT count(*), sum(hashtext(note)) FROM facts").fetchone() == exadb


def test_pg_basebackup_tar_gz_starts_as_a_copy(scratch_pg, exadb, tmp_path):
    tmp = service_owned(tmp_path)
    # The specification's command as it is; it starts with a spread checkpoint, which paces its writes
    # over checkpoint_timeout: written out first, there is nothing left to pace (the docs
    # give `-c fast` for a busy server).
    with psycopg.connect(scratch_pg.conninfo, password=PASSWORD, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    backup = in_container(scratch_pg, tmp, f"pg_basebackup -w -U postgres -D {tmp / 'base'} -Ft -z")
    assert backup.returncode == 0, backup.stderr
    assert {p.name for p in (tmp / "base").iterdir()} >= {"base.tar.gz", "pg_wal.tar.gz"}
    datadir = tmp / "restored"
    untar(tmp / "base" / "base.tar.gz", datadir)
    untar(tmp / "base" / "pg_wal.tar.gz", datadir / "pg_wal")
    assert_starts_with_the_data(scratch_pg, datadir, tmp, exadb)


def test_a_tar_of_the_stopped_data_directory_restores(scratch_pg, exadb, tmp_path):
    """The volume backup: stop the coordinator, tar its data directory, untar it elsewhere."""
    tmp = service_owned(tmp_path)
    source = scratch_pg.root / "data"
    subprocess.run([str(scratch_pg.bindir / "pg_ctl"), "-D", str(source), "-m", "fast", "-w", "stop"],
                   capture_output=True, check=True, timeout=60, **as_service_user())
    try:
        subprocess.run(["tar", "czf", str(tmp / "coordinator_backup.tar.gz"), "-C", str(source), "."],
                       check=True, timeout=300)
    finally:
        subprocess.run([str(scratch_pg.bindir / "pg_ctl"), "-D", str(source), "-w", "-l",
                        str(scratch_pg.root / "log"), "-o",
                        f"-c config_file={scratch_pg.root / 'postgresql.conf'} -p {scratch_pg.port}", "start"],
                       capture_output=True, check=True, timeout=90, **as_service_user())
    datadir = tmp / "target"
    untar(tmp / "coordinator_backup.tar.gz", datadir)
    (datadir / "postmaster.pid").unlink(missing_ok=True)
    assert_starts_with_the_data(scratch_pg, datadir, tmp, exadb)


def untar(archive: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "xzf", str(archive), "-C", str(target)], check=True, timeout=300)


def assert_starts_with_the_data(scratch_pg, datadir: Path, tmp: Path, expected) -> None:
    give(datadir)
    datadir.chmod(0o700)
    sockets = tmp / "sock"
    sockets.mkdir()
    give(sockets)
    conf = image_conf(sockets)
    give(conf)
    port = free_port()
    started = subprocess.run([str(scratch_pg.bindir / "pg_ctl"), "-D", str(datadir), "-w", "-t", "60", "-l",
                              str(tmp / "restored.log"), "-o", f"-c config_file={conf} -p {port}", "start"],
                             capture_output=True, text=True, check=False, timeout=90, **as_service_user())
    try:
        assert started.returncode == 0, (tmp / "restored.log").read_text()[-2000:]
        time.sleep(0.2)
        with psycopg.connect(f"host=127.0.0.1 port={port} dbname=exadb user=postgres connect_timeout=5",
                             password=PASSWORD) as conn:
            assert conn.execute("SELECT count(*), sum(hashtext(note)) FROM facts").fetchone() == expected
    finally:
        subprocess.run([str(scratch_pg.bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"],
                       capture_output=True, check=False, timeout=60, **as_service_user())
