"""WAL archiving follows the primary of an ha pair, with no restart: only the node ExaPG calls
primary archives (a standby, even promoted by hand, writes nothing into the stanza); after
`exapg switchover` or `exapg failover` a backup works at once, and a restore to 'latest' from
a backup taken before the change brings back every row committed on either side of it.

The tests share one stack and run in file order; each reads which node is primary from the
stack's state."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from exapg.backup.pgbackrest import binary
from exapg.cluster.topology import Node
from exapg.proc import wait_until
from tests.conftest import Stack, build_stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(binary() is None, reason="pgBackRest is not installed (apt-get install pgbackrest)"),
]

WAL_FILE = re.compile(r"^([0-9A-F]{8})(?:[0-9A-F]{16}|\.history)")
TIMELINE = "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"


@pytest.fixture(scope="module")
def ha() -> Iterator[Stack]:
    stack = build_stack("ha")
    try:
        sql(stack, "coordinator", "CREATE TABLE facts (id int PRIMARY KEY, batch int NOT NULL)")
        yield stack
    finally:
        stack.destroy()


def nodes(stack: Stack) -> tuple[Node, Node]:
    """(primary, standby) as the stack's state says now."""
    topology = stack.runtime.stack.topology
    return topology.coordinator, topology.standbys[0]


def sql(stack: Stack, node: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(**stack.runtime.stack.dsn(node).kwargs(), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def insert_batch(stack: Stack, batch: int, size: int = 1000) -> tuple[int, int]:
    """Rows of `batch` on the primary; returns the primary's (count, sum of ids) after it."""
    primary = nodes(stack)[0].name
    sql(stack, primary, "INSERT INTO facts SELECT g, %s FROM generate_series(%s::int, %s::int) g",
        (batch, batch * size + 1, batch * size + size))
    return counted(stack)


def counted(stack: Stack) -> tuple[int, int]:
    row = sql(stack, nodes(stack)[0].name, "SELECT count(*), coalesce(sum(id), 0) FROM facts")[0]
    return int(row[0]), int(row[1])


def archive_command(stack: Stack, node: str) -> str:
    return str(sql(stack, node, "SELECT current_setting('archive_command')")[0][0])


def assert_archives_alone(stack: Stack) -> None:
    """The primary pushes into the coordinator stanza from its own data directory; the standby
    runs with archive_mode on (promoted, it archives after a reload) and no command."""
    primary, standby = nodes(stack)
    assert f"--stanza=coordinator --pg1-path={primary.datadir} archive-push" in archive_command(stack, primary.name)
    assert archive_command(stack, standby.name) == ""
    assert sql(stack, standby.name, "SELECT current_setting('archive_mode')") == [("on",)]


def backup(stack: Stack, *options: str) -> str:
    """Takes a backup; returns its label, as `exapg backup list` shows it."""
    result = stack.cli("backup", *options)
    assert result.returncode == 0, result.stderr
    listed = stack.cli("backup", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    stanzas = json.loads(listed.stdout)["stanzas"]
    assert [s["stanza"] for s in stanzas] == ["coordinator"]
    label = stanzas[0]["backups"][-1]["label"]
    assert f"coordinator: {stanzas[0]['backups'][-1]['type']} backup {label}" in result.stdout
    return label


def archived_timelines(stack: Stack) -> set[int]:
    """The timelines of the WAL segments and history files in the coordinator stanza's archive."""
    archive = Path(stack.settings.backup_repo_path) / "archive" / "coordinator"
    found = (WAL_FILE.match(p.name) for p in archive.rglob("*") if p.is_file())
    return {int(m.group(1), 16) for m in found if m}


def restore_latest(stack: Stack, backup_set: str) -> str:
    result = stack.cli("restore", "latest", "--set", backup_set, "--yes", timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{nodes(stack)[0].name}: restored to the end of the archived WAL" in result.stdout
    return result.stdout


def test_only_the_primary_archives(ha):
    assert_archives_alone(ha)


def test_a_standby_promoted_by_hand_writes_nothing_into_the_stanza(ha):
    standby = nodes(ha)[1]
    ha.server(standby.name).promote()
    stray = int(sql(ha, standby.name, TIMELINE)[0][0])
    sql(ha, standby.name, "INSERT INTO facts VALUES (-1, -1)")
    sql(ha, standby.name, "SELECT pg_switch_wal()")
    assert not wait_until(lambda: stray in archived_timelines(ha), 5, interval=0.5)
    assert sql(ha, standby.name, "SELECT archived_count, failed_count FROM pg_stat_archiver") == [(0, 0)]
    result = ha.cli("rejoin", standby.name)
    assert result.returncode == 0, result.stderr
    assert stray not in archived_timelines(ha)
    assert_archives_alone(ha)


def test_switchover_backup_at_once_and_restore_to_latest_across_it(ha):
    before = backup(ha, "--type", "full")
    insert_batch(ha, 1)
    new = nodes(ha)[1]
    result = ha.cli("switchover", timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{new.name}: archives WAL into stanza coordinator (checked)" in result.stdout
    assert nodes(ha)[0].name == new.name
    assert_archives_alone(ha)
    timeline = int(sql(ha, new.name, TIMELINE)[0][0])
    assert wait_until(lambda: timeline in archived_timelines(ha), 60), "the new timeline reaches the archive"
    insert_batch(ha, 2)
    after = backup(ha)  # no restart: the promoted node archives already
    assert after != before
    expected = insert_batch(ha, 3)
    restore_latest(ha, before)  # replays across the switchover, onto the new timeline
    assert counted(ha) == expected
    assert_archives_alone(ha)


def test_failover_rejoin_backup_at_once_and_restore_to_latest_across_it(ha):
    before = backup(ha, "--type", "full")
    old, new = nodes(ha)
    # the repository is unreachable for the primary's archiver when it dies: a completed
    # segment waits (.ready), which only the old primary's data directory holds
    archive = Path(ha.settings.backup_repo_path) / "archive" / "coordinator"
    archive.chmod(0)
    try:
        insert_batch(ha, 4)
        sql(ha, old.name, "SELECT pg_switch_wal()")
        assert wait_until(lambda: sql(ha, old.name, "SELECT failed_count FROM pg_stat_archiver")[0][0] > 0, 30)
        os.kill(ha.server(old.name).pidfile().pid, signal.SIGKILL)
    finally:
        archive.chmod(0o750)
    result = ha.cli("failover", timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{old.name}: archived the " in result.stdout, result.stdout
    assert f"{new.name}: archives WAL into stanza coordinator (checked)" in result.stdout
    assert nodes(ha)[0].name == new.name
    assert_archives_alone(ha)  # the rewound old primary archives nothing
    insert_batch(ha, 5)
    backup(ha)
    expected = insert_batch(ha, 6)
    restore_latest(ha, before)
    assert counted(ha) == expected
    assert_archives_alone(ha)
