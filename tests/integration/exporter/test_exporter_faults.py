"""The exporter while servers die, hang, get promoted or are misconfigured."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from exporter_support import parse, postgres_processes, server_label, signal_all, stack_env
from psycopg import sql

from exapg.postgres.conn import connect
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def timed_scrape(exporter):
    started = time.monotonic()
    samples = exporter.scrape()
    return samples, time.monotonic() - started


def test_killed_standby_is_down_at_once_with_no_stale_values(make_stack, start_exporter):
    stack = make_stack()
    exporter = start_exporter(stack_env(stack))
    standby, primary = server_label(stack.standby.port), server_label(stack.coordinator.port)
    assert exporter.scrape().get_value("pg_up", server=standby) == 1
    signal_all(postgres_processes(stack.standby_server.datadir), signal.SIGKILL)
    samples, took = timed_scrape(exporter)
    assert took < 1.0
    assert samples.get_value("pg_up", server=standby, instance="standby") == 0
    assert samples.for_server(standby) == {
        "pg_up", "pg_replication_exporter_collector_success", "pg_replication_exporter_errors_total",
        "pg_replication_health_score", "pg_replication_health_score_deduction",
    }
    assert samples.get_value("pg_replication_health_score_deduction", server=standby,
                             reason="server_down") == 50
    assert samples.get_value("pg_replication_exporter_errors_total", server=standby) >= 1
    assert samples.get_value("pg_up", server=primary) == 1
    # the primary sees its standby gone: no sender, the slot inactive
    later = exporter.scrape_until(lambda s: s.get_value("pg_wal_senders", server=primary) == 0)
    assert later.get_value("pg_replication_slots_inactive", server=primary) == 1


def test_hanging_standby_does_not_hold_up_metrics(make_stack, start_exporter, caplog):
    caplog.set_level(logging.INFO, logger="exapg.exporter")
    stack = make_stack()
    exporter = start_exporter(stack_env(stack))
    standby, primary = server_label(stack.standby.port), server_label(stack.coordinator.port)
    exporter.scrape_until(lambda s: s.get_value("pg_up", server=standby) == 1)
    processes = postgres_processes(stack.standby_server.datadir)
    signal_all(processes, signal.SIGSTOP)  # accepts TCP, answers nothing
    try:
        for _ in range(4):  # a hung query, then connection attempts that hang
            samples, took = timed_scrape(exporter)
            assert took < 1.0, f"/metrics took {took:.3f} s"
            assert samples.get_value("pg_up", server=standby) == 0
            assert samples.get_value("pg_up", server=primary) == 1
            time.sleep(0.5)
    finally:
        signal_all(processes, signal.SIGCONT)
    exporter.scrape_until(lambda s: s.get_value("pg_up", server=standby) == 1, timeout=40)
    about_standby = [r for r in caplog.records if standby in r.getMessage()]
    assert [r.levelname for r in about_standby if r.levelname != "DEBUG"] == ["ERROR", "INFO"], [
        r.getMessage() for r in about_standby]


def test_promotion_flips_the_observed_role_and_keeps_the_labels(make_stack, start_exporter):
    stack = make_stack()
    exporter = start_exporter(stack_env(stack))
    standby = server_label(stack.standby.port)
    before = exporter.scrape()
    assert before.get_value("pg_replication_is_replica", server=standby, instance="standby") == 1
    stack.standby_server.promote(timeout=60)
    samples = exporter.scrape()
    # the configured role stays the label (the same series); the observed one is the value
    assert samples.get_value("pg_replication_is_replica", server=standby, instance="standby") == 0
    assert samples.get_value("pg_replication_is_replica", instance="primary", server=standby) is None
    assert samples.get_value("pg_timeline_id", server=standby) == before.get_value(
        "pg_timeline_id", server=standby) + 1
    health = {s["server"]: s for s in exporter.get("/health").json()["servers"]}
    assert (health[standby]["instance"], health[standby]["role"]) == ("standby", "primary")
    assert samples.get_value("pg_wal_replay_paused", server=standby) is None
    # two primaries now: the promoted standby is scored as a standby that is not one
    assert samples.get_value("pg_replication_health_score_deduction", server=standby,
                             reason="not_replica") == 50
    assert samples.get_value("pg_data_consistency_check", server=standby) is None


def test_standby_of_another_cluster_is_inconsistent(ha_stack, make_stack, start_exporter):
    other = make_stack()
    env = stack_env(ha_stack, STANDBY_HOSTS=f"127.0.0.1:{other.standby.port}")
    env["POSTGRES_PASSWORD_FILE"] = str(ha_stack.password_file)
    exporter = start_exporter(env)
    # both clusters share the superuser name but not the password: give the other one's
    # standby a role with the first cluster's password, through the other primary
    with connect(other.coordinator) as conn:  # utility statements take no bound parameters
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(ha_stack.settings.postgres_user), sql.Literal(ha_stack.password)))
    standby = server_label(other.standby.port)
    samples = exporter.scrape_until(lambda s: s.get_value("pg_up", server=standby) == 1)
    assert samples.get_value("pg_data_consistency_check", server=standby) == 0
    assert samples.get_value("pg_replication_health_score_deduction", server=standby,
                             reason="inconsistent") == 30


def test_bad_configuration_logs_once_and_keeps_serving(ha_stack, tmp_path):
    bad_password = tmp_path / "password"
    bad_password.write_text("not-the-password")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "POSTGRES_"))},
        "PRIMARY_HOST": "no-such-host.invalid",
        "PRIMARY_PORT": "5432",
        "STANDBY_HOSTS": f"127.0.0.1:{ha_stack.standby.port},127.0.0.1:garbage",
        "POSTGRES_DB": ha_stack.settings.postgres_db,
        "POSTGRES_PASSWORD_FILE": str(bad_password),
        "EXPORTER_PORT": str(port),
        "EXPORTER_LISTEN_ADDRESS": "127.0.0.1",
    }
    process = subprocess.Popen([sys.executable, "-m", "exapg.exporter"], env=env,
                               stderr=subprocess.PIPE, text=True)
    try:
        samples = None
        for _ in range(50):
            time.sleep(0.2)
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
            except httpx.TransportError:
                continue
            samples = parse(response.text)
            if samples.get_value("pg_up", server="127.0.0.1:garbage") is not None:
                break
        for _ in range(4):  # more scrapes: still running, no new log lines
            response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
            time.sleep(0.3)
        assert process.poll() is None, "the exporter exited"
        samples = parse(response.text)
        assert samples.get_value("pg_up", server="no-such-host.invalid:5432") == 0
        assert samples.get_value("pg_up", server=f"127.0.0.1:{ha_stack.standby.port}") == 0
        assert samples.get_value("pg_up", server="127.0.0.1:garbage") == 0
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        assert health.status_code == 200
        assert all(s["up"] is False for s in health.json()["servers"])
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    assert "Traceback" not in stderr
    assert len(errors) == 3, stderr  # one line per misconfigured server, not one per scrape
    assert any("garbage" in line and "not a number" in line for line in errors)
    assert any("no-such-host.invalid" in line for line in errors)
    assert any("password authentication failed" in line for line in errors)


def test_disconnected_standby_still_shows_how_far_behind_it_is(make_stack, start_exporter):
    stack = make_stack()
    exporter = start_exporter(stack_env(stack))
    standby = server_label(stack.standby.port)
    exporter.scrape_until(lambda s: s.get_value("pg_wal_receivers", server=standby) == 1)
    with connect(stack.coordinator) as conn:
        conn.execute("CREATE TABLE replayed (v int)")  # a commit for the standby to replay
    with connect(stack.standby) as conn:
        deadline = time.monotonic() + 30
        while conn.execute("SELECT pg_last_xact_replay_timestamp() IS NULL").fetchone()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    with connect(stack.standby) as conn:  # point its WAL receiver at nothing
        conn.execute("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1'")
        conn.execute("SELECT pg_reload_conf()")
    exporter.scrape_until(lambda s: s.get_value("pg_wal_receivers", server=standby) == 0)
    with connect(stack.coordinator) as conn:
        conn.execute("CREATE TABLE behind AS SELECT generate_series(1, 20000) v")
    samples = exporter.scrape()
    assert samples.get_value("pg_replication_lag_bytes", server=standby) > 100_000
    assert samples.get_value("pg_replication_lag_seconds", server=standby) > 0
    assert samples.get_value("pg_replication_health_score_deduction", server=standby,
                             reason="not_streaming") == 30
    assert samples.get_value("pg_data_consistency_check", server=standby) == 1  # lag only


def test_restarted_server_is_up_on_the_first_scrape_after(make_stack, start_exporter):
    stack = make_stack()
    exporter = start_exporter(stack_env(stack))
    standby = server_label(stack.standby.port)
    assert exporter.scrape().get_value("pg_up", server=standby) == 1
    stack.standby_server.stop(mode="fast")
    stack.standby_server.start(timeout=60)
    stack.standby_server.wait_ready(60)
    samples = exporter.scrape()  # its persistent connection died with the old server
    assert samples.get_value("pg_up", server=standby) == 1
    assert samples.get_value("pg_replication_exporter_errors_total", server=standby) == 0
