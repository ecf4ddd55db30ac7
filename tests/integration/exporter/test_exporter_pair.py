"""The exporter against the session's running primary + hot standby (left as found)."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from exporter_support import RunningExporter, server_label, stack_env, start
from psycopg import sql

from exapg.exporter.analysis import SYNC_STATES
from exapg.exporter.metrics import SPECS
from exapg.postgres.conn import Dsn, connect
from tests.conftest import Stack

pytestmark = pytest.mark.integration


@dataclass
class Pair:
    stack: Stack
    exporter: RunningExporter
    primary: str  # server labels
    standby: str


@pytest.fixture
def pair(ha_stack, start_exporter):
    return Pair(ha_stack, start_exporter(stack_env(ha_stack)),
                server_label(ha_stack.coordinator.port), server_label(ha_stack.standby.port))


@dataclass
class PrivatePair(Pair):
    dbname: str  # the only exporter connected to it is this test's

    def dsn(self, server: Dsn) -> Dsn:
        return replace(server, dbname=self.dbname)


@pytest.fixture
def private_pair(ha_stack) -> Iterator[PrivatePair]:
    """The exporter connected to a database of its own, dropped afterwards.

    The stack's supervised exporter, scraped by its Prometheus every 15 s, runs the same
    state statement and writes the same heartbeat in the stack's database. In a database
    of its own the test's exporter is the only one: pg_stat_statements counts it alone
    (counted per database), and nobody else advances its heartbeat.
    """
    dbname = f"exporter_probe_{uuid.uuid4().hex[:8]}"
    with connect(ha_stack.coordinator) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        wait_for_database(ha_stack.standby, dbname)  # else the first standby connect fails
        exporter = start(stack_env(ha_stack, POSTGRES_DB=dbname))
        try:
            yield PrivatePair(ha_stack, exporter, server_label(ha_stack.coordinator.port),
                              server_label(ha_stack.standby.port), dbname)
        finally:
            exporter.stop()
    finally:
        with connect(ha_stack.coordinator) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def wait_for_database(dsn: Dsn, dbname: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with connect(dsn) as conn:
        while not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            assert time.monotonic() < deadline, f"database {dbname} not replayed on {dsn.port} in {timeout}s"
            time.sleep(0.1)


def test_idle_pair_reports_no_lag(pair):
    exporter, primary, standby = pair.exporter, pair.primary, pair.standby
    exporter.scrape()
    time.sleep(2.5)  # an idle primary: the specification's now() - last replay would be >= 2.5 s here
    samples = exporter.scrape()
    assert samples.get_value("pg_up", server=primary, instance="primary") == 1
    assert samples.get_value("pg_up", server=standby, instance="standby") == 1
    assert samples.get_value("pg_replication_is_replica", server=standby) == 1
    assert samples.get_value("pg_replication_is_replica", server=primary) == 0
    assert samples.get_value("pg_replication_lag_seconds", server=standby) == 0
    assert samples.get_value("pg_replication_lag_bytes", server=standby) < 1024 * 1024
    assert samples.get_value("pg_wal_receivers", server=standby) == 1
    assert samples.get_value("pg_replication_connections", server=primary) == 1
    # the standby's WAL sender, as pg_stat_replication names it (no synchronous_standby_names)
    sync_state = samples.get_value("pg_replication_sync_state", server=primary, instance="primary",
                                   application_name="standby", client_addr="127.0.0.1",
                                   sync_state="async")
    assert sync_state == SYNC_STATES["async"] == 0
    assert samples.get_value("pg_wal_replay_paused", server=standby) == 0
    assert samples.get_value("pg_replication_health_score", server=standby) == 100
    assert samples.get_value("pg_data_consistency_check", server=standby) == 1
    assert samples.get_value("pg_timeline_id", server=standby) == samples.get_value(
        "pg_timeline_id", server=primary)
    assert samples.get_value("pg_replication_standby_lag_bytes", server=primary,
                             stage="replay") is not None
    # replay lag is not computed on a server that is not in recovery
    assert samples.get_value("pg_wal_replay_paused", server=primary) is None


def test_lag_appears_while_replay_paused_and_clears_after(pair):
    stack, exporter, primary, standby = pair.stack, pair.exporter, pair.primary, pair.standby
    with connect(stack.standby) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            with connect(stack.coordinator) as writer:
                writer.execute("CREATE TABLE IF NOT EXISTS exporter_lag_probe (v int)")
                writer.execute("INSERT INTO exporter_lag_probe SELECT generate_series(1, 20000)")
            samples = exporter.scrape_until(
                lambda s: (s.get_value("pg_replication_lag_bytes", server=standby) or 0) > 100_000
                and (s.get_value("pg_replication_lag_seconds", server=standby) or 0) > 0)
            assert samples.get_value("pg_wal_replay_paused", server=standby) == 1
            assert samples.get_value("pg_replication_health_score_deduction", server=standby,
                                     reason="replay_paused") == 20
            assert samples.get_value("pg_replication_health_score", server=standby) <= 80
            assert samples.get_value("pg_replication_lag_mb", server=standby) == pytest.approx(
                samples.get_value("pg_replication_lag_bytes", server=standby) / 2**20)
            replay_lag = samples.get_value("pg_replication_standby_lag_bytes", server=primary,
                                           stage="replay")
            assert replay_lag > 100_000
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
            with connect(stack.coordinator) as writer:
                writer.execute("DROP TABLE IF EXISTS exporter_lag_probe")
    samples = exporter.scrape_until(
        lambda s: s.get_value("pg_replication_lag_seconds", server=standby) == 0
        and s.get_value("pg_replication_lag_bytes", server=standby) < 1024 * 1024)
    assert samples.get_value("pg_wal_replay_paused", server=standby) == 0


def test_generation_rate_is_a_rate_not_a_position(pair):
    stack, exporter, primary = pair.stack, pair.exporter, pair.primary
    started = time.monotonic()
    exporter.scrape()
    time.sleep(1.1)
    with connect(stack.coordinator) as writer:
        before = writer.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        writer.execute("CREATE TABLE rate_probe AS SELECT generate_series(1, 50000) v")
        written = int(writer.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", (before,)).fetchone()[0])
        writer.execute("DROP TABLE rate_probe")
    samples = exporter.scrape()
    elapsed = time.monotonic() - started
    rate = samples.get_value("pg_wal_generation_rate", server=primary)
    assert written > 1_000_000
    # bytes per second over the 1.1+ s between the two scrapes (plus a little WAL of the
    # heartbeat and the DROP), not the cumulative position the specification exported
    assert written / elapsed <= rate <= (written + 256 * 1024) / 1.1
    assert rate < samples.get_value("pg_wal_position_bytes_total", server=primary)


def test_slot_metrics_follow_a_slot(pair):
    stack, exporter, primary, standby = pair.stack, pair.exporter, pair.primary, pair.standby
    before = exporter.scrape().get_value("pg_replication_slots_total", server=primary)
    with connect(stack.coordinator) as conn:
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", ("exporter_probe",))
        try:
            samples = exporter.scrape()
            assert samples.get_value("pg_replication_slots_total", server=primary) == before + 1
            assert samples.get_value("pg_replication_slots_inactive", server=primary) >= 1
            assert samples.get_value("pg_replication_slot_wal_status", server=primary,
                                     slot_name="exporter_probe", wal_status="reserved") == 1
            assert samples.get_value("pg_replication_slot_wal_status", server=primary,
                                     slot_name="exporter_probe", wal_status="lost") == 0
            assert samples.get_value("pg_replication_slot_retained_bytes", server=primary,
                                     slot_name="exporter_probe") >= 0
            assert samples.get_value("pg_replication_slot_safe_wal_size_bytes", server=primary,
                                     slot_name="exporter_probe") > 0
            assert samples.get_value("pg_replication_health_score_deduction", server=standby,
                                     reason="slot_inactive") == 10
        finally:
            conn.execute("SELECT pg_drop_replication_slot(%s)", ("exporter_probe",))
    samples = exporter.scrape()
    assert samples.get_value("pg_replication_slots_total", server=primary) == before
    assert samples.get_value("pg_replication_slot_retained_bytes", slot_name="exporter_probe") is None


def test_heartbeat_reaches_the_standby(private_pair):
    """In a database of its own: the supervised exporter's heartbeats in the stack's
    database could otherwise advance seq past the mark this exporter waits for."""
    stack, exporter, standby = private_pair.stack, private_pair.exporter, private_pair.standby
    for _ in range(4):  # table created, heartbeat written, its LSN learnt, standby checked
        exporter.scrape()
        time.sleep(0.3)
    with connect(private_pair.dsn(stack.coordinator)) as conn:
        seq = conn.execute("SELECT seq FROM exapg_exporter.heartbeat").fetchone()[0]
    exporter.scrape_until(lambda s: s.get_value("pg_data_consistency_check", server=standby) == 1)
    primary_target = exporter.collector.targets[0]
    assert primary_target._mark is not None and primary_target._mark[0] >= seq - 1
    with connect(private_pair.dsn(stack.standby)) as conn:
        seen = conn.execute("SELECT seq FROM exapg_exporter.heartbeat").fetchone()[0]
    assert seen >= seq


def test_openmetrics_when_asked_and_health_json(pair):
    exporter, primary, standby = pair.exporter, pair.primary, pair.standby
    response = exporter.get("/metrics", Accept="application/openmetrics-text; version=1.0.0")
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert "pg_wal_position_bytes_total{" in response.text
    health = exporter.get("/health").json()
    assert health["status"] == "ok"
    assert {s["server"]: s["up"] for s in health["servers"]} == {primary: True, standby: True}
    assert exporter.get("/nothing").status_code == 404


def test_promtool_accepts_everything_but_legacy_names(pair, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    exporter = pair.exporter
    text = exporter.get("/metrics").text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=30, check=False)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    legacy = tuple(f"{name} " for name, spec in SPECS.items() if spec.legacy)  # kept on purpose
    assert [line for line in complaints if not line.startswith(legacy)] == []


def statement_calls(dsn: Dsn, pattern: str, dbname: str) -> int:
    """Calls of the statements matching `pattern` made in database `dbname` (the view is
    read from the stack's database, where the extension is installed)."""
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE %s "
            "AND dbid = (SELECT oid FROM pg_database WHERE datname = %s)", (pattern, dbname),
        ).fetchone()
    return int(row[0])


def test_one_state_statement_per_server_per_scrape(private_pair):
    exporter, stack, db = private_pair.exporter, private_pair.stack, private_pair.dbname
    exporter.scrape()
    time.sleep(0.2)
    state, beat = "%heartbeat_exists%", "%INSERT INTO exapg_exporter.heartbeat%"
    before = [statement_calls(d, state, db) for d in (stack.coordinator, stack.standby)]
    beats_before = statement_calls(stack.coordinator, beat, db)
    assert before[0] >= 1 and before[1] >= 1  # counted in this database: the filter works
    for _ in range(20):
        exporter.scrape()
    time.sleep(0.2)
    after = [statement_calls(d, state, db) for d in (stack.coordinator, stack.standby)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [20, 20]
    assert statement_calls(stack.coordinator, beat, db) - beats_before == 20


def test_scrape_is_fast(pair):
    exporter = pair.exporter
    for _ in range(3):
        exporter.scrape()
    durations = []
    for _ in range(30):
        samples = exporter.scrape()
        durations.append(samples.get_value("pg_replication_exporter_scrape_duration_seconds"))
    durations.sort()
    assert durations[len(durations) // 2] < 0.05  # generous: CI machines; bench/ has the figures


def test_table_checksums_agree_on_a_healthy_standby(pair, start_exporter):
    stack, standby = pair.stack, pair.standby
    with connect(stack.coordinator) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS exporter_checksum_probe (id int, v text)")
        conn.execute("INSERT INTO exporter_checksum_probe SELECT g, md5(g::text) "
                     "FROM generate_series(1, 5000) g")
    try:
        exporter = start_exporter(stack_env(
            stack, EXPORTER_CHECKSUM_TABLES="public.exporter_checksum_probe",
            EXPORTER_CHECKSUM_INTERVAL="3600"))
        verifier = exporter.collector.checksums
        verifier.run_round()  # the thread ran one too; either records the verdict
        assert verifier._mismatches == {(standby, "public.exporter_checksum_probe"): 0}
        assert not verifier.diverged(standby)
        samples = exporter.scrape()
        assert samples.get_value("pg_data_consistency_check", server=standby) == 1
    finally:
        with connect(stack.coordinator) as conn:
            conn.execute("DROP TABLE exporter_checksum_probe")
