"""The backups of docs/docker.md ("Backups") on the real engine: each command is taken as
the docs print it and run by bash against running containers (from a temporary directory,
with COMPOSE_FILE naming the project's files and COMPOSE_PROJECT_NAME its name), then
restored into a fresh project and read back: rows and checksum equal.

Two substitutions, both stated in the docs: the volume name `exapg_coordinator_data` is the
test project's, and `alpine` (which cannot be pulled here) is exapg/debian:bookworm, the
Debian base of every ExaPG image, running the same `tar` command.
"""

from __future__ import annotations

import pytest

from tests.docker.engine import DOCKER_DIR, Project, docker, documented, project, shell

pytestmark = pytest.mark.timeout(900)

DEV = ["docker-compose.yml", "docker-compose.override.yml"]
PROD = ["docker-compose.yml", "docker-compose.prod.yml"]
TAR_IMAGE = "exapg/debian:bookworm"
ROWS = 2_500

DUMP = "docker-compose exec -T coordinator pg_dump -U postgres exadb > backup.sql"
LOAD_DUMP = "docker-compose exec -T coordinator psql -X -q -v ON_ERROR_STOP=1 -U postgres exadb < backup.sql"
BASEBACKUP = "docker-compose exec -T coordinator pg_basebackup -U postgres -D /backup/base-$(date +%F) -Ft -z -c fast"
STOP = "docker-compose stop coordinator"
START = "docker-compose start coordinator"
CREATE = "docker-compose up --no-start coordinator"
UP = "docker-compose up -d coordinator"
VOLUME_TAR = ("docker run --rm -v exapg_coordinator_data:/source:ro -v \"$(pwd)\":/backup alpine "
              "tar czf /backup/coordinator_backup.tar.gz -C /source .")
VOLUME_UNTAR = ("docker run --rm -v exapg_coordinator_data:/target -v \"$(pwd)\":/backup alpine "
                "tar xzf /backup/coordinator_backup.tar.gz -C /target")
BASE_UNTAR = ("docker run --rm --user 999:999 -v exapg_coordinator_data:/target "
              "-v /opt/exapg/backup/base-2026-12-03:/backup:ro alpine sh -c 'tar xzf /backup/base.tar.gz -C /target "
              "&& tar xzf /backup/pg_wal.tar.gz -C /target/pg_wal'")
SPEC_DOWN = "docker-compose down --volumes --remove-orphans"
CONTENT = "SELECT count(*), md5(string_agg(note, ',' ORDER BY id)) FROM facts"


def user_env(stack: Project) -> dict[str, str]:
    """What a user's shell in docker/ has: the project's variables (docker/.env) and its files."""
    return {**stack.env, "COMPOSE_FILE": ":".join(str(DOCKER_DIR / name) for name in stack.files)}


def on_this_engine(command: str, stack: Project, paths: dict[str, str] | None = None) -> str:
    """A documented command with the test project's volume, the Debian base for alpine, and
    host paths of this run for the docs' example paths."""
    command = command.replace("exapg_coordinator_data", f"{stack.name}_coordinator_data")
    command = command.replace(" alpine ", f" {TAR_IMAGE} ")
    for example, real in (paths or {}).items():
        command = command.replace(example, real)
    return command


def start_with_facts(stack: Project) -> tuple[int, str]:
    stack.compose("up", "-d", "coordinator")
    stack.wait_healthy("coordinator")
    with stack.connect() as conn:
        conn.execute("CREATE TABLE facts (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO facts SELECT g, md5(g::text) FROM generate_series(1, %s) g", (ROWS,))
        return content(stack)


def content(stack: Project) -> tuple[int, str]:
    with stack.connect() as conn:
        row = conn.execute(CONTENT).fetchone()
    assert row is not None and row[0] == ROWS
    return row


def test_sql_dump_and_volume_tar_restore_into_fresh_projects(tmp_path):
    with project(DEV) as source:
        password = source.env["POSTGRES_PASSWORD"]
        expected = start_with_facts(source)
        shell(documented(DUMP), tmp_path, user_env(source))
        dump = (tmp_path / "backup.sql").read_text()
        assert "CREATE TABLE public.facts" in dump and "\r\n" not in dump

        # pg_basebackup of the dev pair lands in the coordinator_backup volume ...
        shell(documented(BASEBACKUP), tmp_path, user_env(source))
        listed = source.compose("exec", "-T", "coordinator", "sh", "-c", "ls /backup/base-*").stdout.split()
        assert {"base.tar.gz", "pg_wal.tar.gz"} <= set(listed), listed

        shell(documented(STOP), tmp_path, user_env(source))
        shell(on_this_engine(documented(VOLUME_TAR), source), tmp_path, user_env(source))
        shell(documented(START), tmp_path, user_env(source))
        source.wait_healthy("coordinator")
        assert content(source) == expected

        # ... which the specification's `down --volumes` deletes with the data: the docs' warning
        shell(documented(SPEC_DOWN), tmp_path, user_env(source))
        for volume in ("coordinator_data", "coordinator_backup"):
            assert docker("volume", "inspect", f"{source.name}_{volume}", check=False).returncode != 0

    with project(DEV) as fresh:
        fresh.compose("up", "-d", "coordinator")
        fresh.wait_healthy("coordinator")
        shell(documented(LOAD_DUMP), tmp_path, user_env(fresh))
        assert content(fresh) == expected

    assert (tmp_path / "coordinator_backup.tar.gz").stat().st_size > 0
    with project(DEV, POSTGRES_PASSWORD=password) as fresh:  # a copy keeps the source's roles
        shell(documented(CREATE), tmp_path, user_env(fresh))
        shell(on_this_engine(documented(VOLUME_UNTAR), fresh), tmp_path, user_env(fresh))
        shell(documented(UP), tmp_path, user_env(fresh))
        fresh.wait_healthy("coordinator")
        assert content(fresh) == expected


def test_pg_basebackup_to_the_host_outlives_down_volumes_and_restores_into_a_fresh_volume(tmp_path):
    from exapg.runtime.docker import prepare_production_dirs

    dirs = {f"EXAPG_{name.upper()}_DIR": str(tmp_path / name) for name in ("data", "config", "log", "backup")}
    with project(PROD, **dirs) as source:
        prepare_production_dirs(source.env)
        password = source.env["POSTGRES_PASSWORD"]
        expected = start_with_facts(source)
        identity = system_identifier(source)
        shell(documented(BASEBACKUP), tmp_path, user_env(source))
        shell(documented(SPEC_DOWN), tmp_path, user_env(source))
    made = (tmp_path / "backup").stat()  # as exapg up makes it
    assert (made.st_uid, made.st_gid, made.st_mode & 0o777) == (999, 999, 0o700)
    backups = list((tmp_path / "backup").glob("base-*"))
    assert len(backups) == 1, backups
    archives = {path.name: path.stat() for path in backups[0].iterdir()}
    assert set(archives) == {"base.tar.gz", "pg_wal.tar.gz", "backup_manifest"}, archives
    assert {(s.st_uid, s.st_gid) for s in archives.values()} == {(999, 999)}

    with project(DEV, POSTGRES_PASSWORD=password) as fresh:
        shell(documented(CREATE), tmp_path, user_env(fresh))
        untar = on_this_engine(documented(BASE_UNTAR), fresh, {"/opt/exapg/backup/base-2026-12-03": str(backups[0])})
        shell(untar, tmp_path, user_env(fresh))
        shell(documented(UP), tmp_path, user_env(fresh))
        fresh.wait_healthy("coordinator")
        assert content(fresh) == expected
        assert system_identifier(fresh) == identity  # the source's cluster, not a new one


def system_identifier(stack: Project) -> int:
    with stack.connect() as conn:
        row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    assert row is not None
    return int(row[0])
