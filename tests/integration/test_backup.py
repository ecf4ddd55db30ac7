"""Backups and point-in-time restores with pgBackRest on a real HA stack: attempts to lose
data that must fail. The tests share one stack and run in file order (each leaves it up)."""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from exapg.backup.pgbackrest import binary
from exapg.postgres.binaries import find_binaries
from exapg.postgres.conn import connect
from exapg.runtime import archiving
from tests.conftest import build_stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(binary() is None, reason="pgBackRest is not installed (apt-get install pgbackrest)"),
]

COUNT = "SELECT count(*), coalesce(sum(id), 0) FROM facts"


@pytest.fixture(scope="module")
def stack():
    made = build_stack("ha")
    try:
        with connect(made.coordinator) as conn:
            conn.execute("CREATE TABLE facts (id int PRIMARY KEY, batch int NOT NULL)")
        yield made
    finally:
        made.destroy()


def rows(dsn) -> tuple[int, int]:
    with connect(dsn) as conn:
        found = conn.execute(COUNT).fetchone()
    assert found is not None
    return int(found[0]), int(found[1])


def insert_batch(dsn, batch: int, size: int = 1000) -> None:
    with connect(dsn) as conn:
        conn.execute("INSERT INTO facts SELECT g, %s FROM generate_series(%s::int, %s::int) g",
                     (batch, batch * size + 1, batch * size + size))


def archived(dsn) -> int:
    with connect(dsn) as conn:
        row = conn.execute("SELECT archived_count FROM pg_stat_archiver").fetchone()
    return int(row[0]) if row else 0


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def streaming(stack) -> bool:
    try:
        with psycopg.connect(**stack.standby.kwargs(), autocommit=True) as conn:
            row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0] == "streaming")


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# -- archiving -------------------------------------------------------------------------------------
def test_wal_archiving_works_from_up(stack):
    archiving.driver(stack.runtime.stack).check("coordinator")  # raises when WAL does not arrive
    before = archived(stack.coordinator)
    insert_batch(stack.coordinator, 0, 10)
    with connect(stack.coordinator) as conn:
        conn.execute("SELECT pg_switch_wal()")
    wait_for(lambda: archived(stack.coordinator) > before, 60, "the switched segment to be archived")
    with connect(stack.standby) as conn:  # archive_mode on, so that a switchover needs no restart
        assert conn.execute("SELECT current_setting('archive_mode'), current_setting('archive_command')"
                            ).fetchone() == ("on", "")


# -- backup, list -------------------------------------------------------------------------------------
def test_backups_are_listed_with_sizes_and_the_restorable_range(stack):
    first = stack.cli("backup", "--type", "incr")
    assert first.returncode == 0, first.stderr
    assert "full backup" in first.stdout  # the first backup is full, whatever the type asked
    insert_batch(stack.coordinator, 1, 10)
    second = stack.cli("backup", "--type", "diff")
    assert second.returncode == 0, second.stderr
    listed = stack.cli("backup", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    stanza = json.loads(listed.stdout)["stanzas"][0]
    assert stanza["stanza"] == "coordinator"
    assert [b["type"] for b in stanza["backups"]] == ["full", "diff"]
    for backup in stanza["backups"]:
        assert backup["size_bytes"] > 1_000_000 and 0 < backup["repository_bytes"] < backup["size_bytes"]
        assert backup["duration_seconds"] >= 0 and backup["wal_start"] <= backup["wal_stop"]
    assert stanza["backups"][1]["prior"] == stanza["backups"][0]["label"]
    span = stanza["restorable"]
    assert span["earliest_time"] == stanza["backups"][0]["stopped"]
    assert span["latest_time"] >= stanza["backups"][1]["stopped"]
    assert span["wal_min"] <= stanza["backups"][0]["wal_start"] <= span["wal_max"]


def test_backups_reach_the_metrics(stack):
    with connect(stack.coordinator) as conn:
        recorded = conn.execute("SELECT type FROM exapg_backup.backups ORDER BY stopped_at").fetchall()
    assert [r[0] for r in recorded] == ["full", "diff"]
    url = f"http://127.0.0.1:{stack.settings.postgres_exporter_port}/metrics"

    def scraped() -> str | None:
        text = urllib.request.urlopen(url, timeout=30).read().decode()
        return text if re.search(r'^exapg_backup_age_seconds\{.*type="diff"', text, re.MULTILINE) else None

    text = wait_for(scraped, 60, "postgres_exporter to serve exapg_backup_*")
    age = re.search(r'^exapg_backup_age_seconds\{[^}]*stanza="coordinator",type="full"\} (\S+)', text, re.MULTILINE)
    assert age and 0 <= float(age.group(1)) < 600
    failing = re.search(r"^exapg_archiver_failing\{[^}]*\} (\S+)", text, re.MULTILINE)
    assert failing and failing.group(1) == "0"


# -- restore --------------------------------------------------------------------------------------------
def test_restore_on_a_running_stack_without_yes_refuses_and_changes_nothing(stack):
    server = stack.coordinator_server
    pid, before = server.pidfile(), rows(stack.coordinator)
    entries = sorted(p.name for p in server.datadir.parent.iterdir())
    result = stack.cli("restore", "latest")
    assert result.returncode == 2
    assert len(error_lines(result)) == 1 and "--yes" in result.stderr
    assert server.pidfile() == pid and rows(stack.coordinator) == before
    assert sorted(p.name for p in server.datadir.parent.iterdir()) == entries


def test_restore_to_a_time_between_two_batches_keeps_exactly_the_first(stack):
    insert_batch(stack.coordinator, 2)
    first = rows(stack.coordinator)
    with connect(stack.coordinator) as conn:
        between = conn.execute("SELECT clock_timestamp()::text").fetchone()[0]
    time.sleep(0.5)
    insert_batch(stack.coordinator, 3)
    assert rows(stack.coordinator) != first
    result = stack.cli("restore", "--to", between, "--yes", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "coordinator: restored to time" in result.stdout and "timeline 2" in result.stdout
    assert rows(stack.coordinator) == first
    wait_for(lambda: streaming(stack), 60, "the standby to stream from the restored coordinator")
    insert_batch(stack.coordinator, 4, 10)
    expected = rows(stack.coordinator)
    wait_for(lambda: rows(stack.standby) == expected, 30, "the standby to replay a write made after the restore")
    kept = re.search(r"kept in (\S+)", result.stdout).group(1)
    assert Path(kept).is_dir() and (Path(kept) / "PG_VERSION").is_file()


def test_a_restore_that_cannot_reach_its_target_puts_the_data_back(stack):
    before = rows(stack.coordinator)
    result = stack.cli("restore", "--to-name", "never-created", "--yes", timeout=300)
    assert result.returncode == 1
    assert len(error_lines(result)) == 1 and "back in place" in result.stderr, result.stderr
    up = stack.cli("up", timeout=300)
    assert up.returncode == 0, up.stderr
    assert rows(stack.coordinator) == before


def test_restore_to_a_named_point(stack):
    insert_batch(stack.coordinator, 5, 10)
    point = stack.cli("backup", "restore-point", "before-batch-6")
    assert point.returncode == 0, point.stderr
    listed = json.loads(stack.cli("backup", "list", "--json").stdout)["restore_points"]
    assert [p["name"] for p in listed][-1] == "before-batch-6" and not listed[-1]["cluster"]
    assert listed[-1]["lsn"] and listed[-1]["created"]
    expected = rows(stack.coordinator)
    insert_batch(stack.coordinator, 6, 10)
    result = stack.cli("restore", "--to-name", "before-batch-6", "--yes", timeout=300)
    assert result.returncode == 0, result.stderr
    assert rows(stack.coordinator) == expected


def test_a_lost_coordinator_data_directory_comes_back_from_the_backups(stack):
    """The disk under the coordinator is gone; the repository (elsewhere in real life) is not.
    Everything archived comes back, on a stopped stack, without --yes."""
    insert_batch(stack.coordinator, 7, 10)
    expected = rows(stack.coordinator)
    before = archived(stack.coordinator)
    with connect(stack.coordinator) as conn:
        conn.execute("SELECT pg_switch_wal()")  # what archive_timeout does within a minute
    wait_for(lambda: archived(stack.coordinator) > before, 60, "the last segment to be archived")
    assert stack.cli("stop").returncode == 0
    shutil.rmtree(stack.coordinator_server.datadir)
    result = stack.cli("restore", "latest", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "coordinator: restored to the end of the archived WAL" in result.stdout and "kept in" not in result.stdout
    assert rows(stack.coordinator) == expected
    wait_for(lambda: streaming(stack), 60, "the standby to stream again")


# -- an existing stack -----------------------------------------------------------------------------------
def test_a_stack_without_archiving_gets_it_at_restart(stack):
    """A stack made before archiving was on: `up` says a restart applies it, `backup` refuses
    until then, `restart` turns it on."""
    server = stack.coordinator_server
    conf = server.datadir / "exapg.conf"
    conf.write_text("".join(line for line in conf.read_text().splitlines(keepends=True)
                            if not line.startswith("archive_")))
    stack.runtime.stack.server(stack.runtime.stack.topology.coordinator).stop()
    server.start(60)
    up = stack.cli("up")
    assert up.returncode == 0, up.stderr
    assert "archive_mode" in up.stdout and "exapg restart" in up.stdout
    refused = stack.cli("backup")
    assert refused.returncode == 1 and "exapg restart" in refused.stderr
    restart = stack.cli("restart", timeout=300)
    assert restart.returncode == 0, restart.stderr
    done = stack.cli("backup")
    assert done.returncode == 0, done.stderr


# -- a damaged repository ------------------------------------------------------------------------------------
def test_verify_finds_a_tampered_backup(stack):
    clean = stack.cli("backup", "verify")
    assert clean.returncode == 0, clean.stderr
    repo = Path(stack.settings.backup_repo_path) / "backup" / "coordinator"
    full = sorted(repo.glob("*F"))[-1]
    victim = max((full / "pg_data" / "base").rglob("*.lz4"), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    for i in range(64, 96):
        data[i] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = stack.cli("backup", "verify")
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1 and "damaged" in lines[0]
    assert victim.name in lines[0], lines[0]


# -- cluster mode --------------------------------------------------------------------------------------------
@pytest.mark.skipif(not find_binaries().has_extension("citus"),
                    reason="the citus extension is not installed for PostgreSQL 15 on this machine")
def test_cluster_restores_every_node_to_one_restore_point():
    cluster = build_stack("cluster", start=False)
    try:
        up = cluster.cli("up", "--mode", "cluster", "--workers", "1", "--no-standby", timeout=300)
        assert up.returncode == 0, up.stderr
        with connect(cluster.coordinator) as conn:
            conn.execute("CREATE TABLE facts (id int PRIMARY KEY, batch int NOT NULL)")
            conn.execute("SELECT create_distributed_table('facts', 'id')")
        backup = cluster.cli("backup")
        assert backup.returncode == 0, backup.stderr
        assert re.search(r"restore point 'backup-\d{8}-\d{6}F' created", backup.stdout), backup.stdout
        stanzas = json.loads(cluster.cli("backup", "list", "--json").stdout)["stanzas"]
        assert [s["stanza"] for s in stanzas] == ["coordinator", "worker1"]
        assert all(s["backups"] for s in stanzas)
        insert_batch(cluster.coordinator, 1)
        point = cluster.cli("backup", "restore-point", "consistent")
        assert point.returncode == 0 and "Citus" in point.stdout, point.stderr
        expected = rows(cluster.coordinator)
        insert_batch(cluster.coordinator, 2)
        result = cluster.cli("restore", "--to-name", "consistent", "--yes", timeout=600)
        assert result.returncode == 0, result.stderr
        assert "worker1: restored to restore point" in result.stdout
        assert rows(cluster.coordinator) == expected
    finally:
        cluster.destroy()
