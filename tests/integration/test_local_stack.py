"""The embedded local stack, driven through the real CLI and real PostgreSQL/pgBouncer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg
import pytest

from exapg.errors import ExaPGError
from exapg.postgres.conn import connect
from tests.config_drift import (
    DOCKER_CONF,
    DOCKER_INI,
    pgbouncer_conf,
    pgbouncer_differences,
    server_conf,
    server_differences,
)
from tests.conftest import EXAPG, cli_environment

pytestmark = pytest.mark.integration


def wait_for(check, timeout: float = 15.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def test_row_written_on_coordinator_is_readable_on_standby(ha_stack):
    with connect(ha_stack.coordinator) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS replicated (id int primary key, note text)")
        conn.execute("INSERT INTO replicated VALUES (%s, %s) ON CONFLICT DO NOTHING", (1, "hello"))
    with connect(ha_stack.standby) as conn:
        assert wait_for(lambda: conn.execute("SELECT to_regclass('replicated')").fetchone()[0])
        assert wait_for(lambda: conn.execute("SELECT count(*) FROM replicated WHERE id = 1").fetchone()[0])
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        assert conn.execute("SELECT note FROM replicated WHERE id = 1").fetchone()[0] == "hello"


def test_standby_streams_through_its_slot(ha_stack):
    with connect(ha_stack.coordinator) as conn:
        rows = conn.execute(
            "SELECT s.slot_type, s.active, r.state, r.application_name FROM pg_replication_slots s "
            "JOIN pg_stat_replication r ON r.pid = s.active_pid").fetchall()
    assert rows == [("physical", True, "streaming", "standby")]


def test_status_json_shape(ha_stack):
    result = ha_stack.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    services = {s["name"]: s for s in json.loads(result.stdout)}
    assert {"coordinator", "standby", "pgbouncer"} <= set(services)
    for service in services.values():
        assert set(service) == {"name", "role", "port", "pid", "state", "healthy", "detail"}
        assert service["state"] == "running" and service["healthy"] is True
        assert isinstance(service["pid"], int)
    assert services["coordinator"]["port"] == ha_stack.settings.coordinator_port
    assert services["pgbouncer"]["role"] == "pooler"


def test_health_passes_and_second_up_is_a_noop(ha_stack):
    assert ha_stack.cli("health").returncode == 0
    again = ha_stack.cli("up")
    assert again.returncode == 0, again.stderr
    assert "already up: nothing to do" in again.stdout


def test_scram_everywhere_and_wrong_password_refused(ha_stack):
    with connect(ha_stack.coordinator) as conn:
        rules = conn.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules").fetchall()
        assert rules == [("scram-sha-256",)]
        assert conn.execute("SHOW password_encryption").fetchone()[0] == "scram-sha-256"
    for dsn in (ha_stack.coordinator, ha_stack.pgbouncer):
        with pytest.raises(psycopg.OperationalError, match=r"(password|SASL) authentication failed"):
            psycopg.connect(**{**dsn.kwargs(), "password": "wrong-password"})


def test_pgbouncer_pools_in_transaction_mode_with_seed_limits(ha_stack):
    with connect(ha_stack.pgbouncer) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == ha_stack.settings.postgres_db
    admin = ha_stack.pgbouncer.kwargs(dbname="pgbouncer")
    with psycopg.connect(**admin, autocommit=True, prepare_threshold=None) as conn:
        config = {row[0]: row[1] for row in conn.execute("SHOW CONFIG").fetchall()}
    assert config["pool_mode"] == "transaction"
    assert config["max_client_conn"] == "100" and config["default_pool_size"] == "20"


def test_analytics_tuning_applied(ha_stack):
    with connect(ha_stack.coordinator) as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('shared_buffers','jit','random_page_cost','max_parallel_workers_per_gather',"
            " 'shared_preload_libraries','wal_level')").fetchall())
    # EXAPG_MEMORY_LIMIT=1GB shared by two nodes: a quarter of 512MB, floored at 128MB
    assert int(settings["shared_buffers"]) * 8192 == 128 * 1024**2
    assert settings["jit"] == "on" and settings["random_page_cost"] == "2"
    assert "pg_stat_statements" in settings["shared_preload_libraries"]
    assert settings["wal_level"] == "replica"


def test_settings_agree_with_the_docker_images_but_where_they_run(ha_stack):
    """What `up` rendered for this node and for pgBouncer against config/ (the images')."""
    local = server_conf((ha_stack.server("coordinator").datadir / "exapg.conf").read_text())
    assert server_differences(local, server_conf(DOCKER_CONF.read_text()), citus=False) == {}
    ini = pgbouncer_conf((ha_stack.runtime.stack.conf_dir / "pgbouncer.ini").read_text())
    assert pgbouncer_differences(ini, pgbouncer_conf(DOCKER_INI.read_text())) == {}


def test_postgres_runs_as_the_service_user(ha_stack):
    pid = ha_stack.coordinator_server.pidfile().pid
    uid = os.stat(f"/proc/{pid}").st_uid
    expected = os.geteuid() if os.geteuid() != 0 else ha_stack.runtime.stack.user.uid
    assert uid == expected and (os.geteuid() != 0) == (uid == os.geteuid())


def test_config_show_masks_secrets_and_credentials(ha_stack):
    shown = ha_stack.cli("config", "show", "--json")
    assert shown.returncode == 0
    assert ha_stack.password not in shown.stdout
    data = json.loads(shown.stdout)
    assert data["COORDINATOR_PORT"] == str(ha_stack.settings.coordinator_port)
    creds = json.loads(ha_stack.cli("credentials", "--json").stdout)
    assert creds["password"] == ha_stack.password
    assert oct((ha_stack.settings.state_dir / "secrets.json").stat().st_mode & 0o777) == "0o600"


def test_sql_command_and_logs(ha_stack):
    result = ha_stack.cli("sql", "-c", "SELECT 40 + 2 AS answer")
    assert result.returncode == 0 and "42" in result.stdout
    standby = ha_stack.cli("sql", "standby", "-c", "SELECT pg_is_in_recovery()")
    assert " t" in standby.stdout
    logs = ha_stack.cli("logs", "coordinator", "--since", "1h", "-t")
    assert logs.returncode == 0 and "coordinator | " in logs.stdout
    unknown = ha_stack.cli("logs", "nosuchservice")
    assert unknown.returncode == 1 and "no logs for service" in unknown.stderr


def test_sql_through_pgbouncer_credentials_table_and_connect_line(ha_stack):
    pooled = ha_stack.cli("sql", "pgbouncer", "-c", "SELECT inet_server_port()")
    assert pooled.returncode == 0, pooled.stderr
    assert str(ha_stack.settings.coordinator_port) in pooled.stdout  # pgBouncer's server connection
    table = ha_stack.cli("credentials")
    assert table.returncode == 0 and ha_stack.password in table.stdout and "management_password" in table.stdout
    again = ha_stack.cli("up")
    line = next(text for text in again.stdout.splitlines() if "pgBouncer:" in text).split(":", 1)[1].split()
    env = dict(item.split("=", 1) for item in line if "=" in item and not item.startswith("-"))
    argv = [item for item in line if "=" not in item or item.startswith("-")]
    printed = subprocess.run([*argv, "-X", "-A", "-t", "-c", "SELECT 6 * 7"], env={**os.environ, **env},
                             capture_output=True, text=True, timeout=30, check=False)
    assert printed.returncode == 0 and printed.stdout.strip() == "42", printed.stderr


def test_logs_follow_prints_new_lines(ha_stack):
    process = subprocess.Popen([*EXAPG, "logs", "coordinator", "-f"], env=cli_environment(ha_stack.env),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        time.sleep(1.5)
        marker = f"exapg_follow_{time.time_ns()}"
        with connect(ha_stack.coordinator) as conn, pytest.raises(psycopg.Error):
            conn.execute(f"SELECT {marker}")  # an error the server logs, marker included
        assert wait_for(lambda: any(marker in line for line in lines), timeout=15), "logs -f showed no new line"
    finally:
        process.terminate()
        process.wait(10)


def test_restart_keeps_data_and_applies_pending_settings(make_stack):
    stack = make_stack("standalone")
    with connect(stack.coordinator) as conn:
        conn.execute("CREATE TABLE survives AS SELECT 1 AS x")
        conn.execute("ALTER SYSTEM SET max_connections = 120")  # needs a restart
        old_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    server_pid = stack.coordinator_server.pidfile().pid
    result = stack.cli("restart")
    assert result.returncode == 0, result.stderr
    assert stack.coordinator_server.pidfile().pid != server_pid
    with connect(stack.coordinator) as conn:
        assert conn.execute("SHOW max_connections").fetchone()[0] == "120"
        assert conn.execute("SELECT x FROM survives").fetchone()[0] == 1
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] != old_pid
    assert stack.cli("health").returncode == 0


def test_a_standby_that_lost_its_primary_is_unhealthy(make_stack):
    stack = make_stack("ha")
    stack.coordinator_server.stop(timeout=60)
    status = {s["name"]: s for s in json.loads(stack.cli("status", "--json").stdout)}
    assert status["standby"]["state"] == "running" and status["standby"]["healthy"] is False
    assert "not streaming from coordinator" in status["standby"]["detail"]
    assert stack.cli("health").returncode == 1
    assert stack.cli("up").returncode == 0
    status = {s["name"]: s for s in json.loads(stack.cli("status", "--json").stdout)}
    assert status["standby"]["healthy"] is True, status["standby"]
    assert stack.cli("health").returncode == 0


def test_two_stacks_side_by_side(ha_stack, make_stack):
    other = make_stack("standalone")
    assert other.cli("health").returncode == 0
    assert ha_stack.cli("health").returncode == 0
    with connect(other.coordinator) as conn:
        assert conn.execute("SELECT to_regclass('replicated')").fetchone()[0] is None
    assert other.settings.state_dir != ha_stack.settings.state_dir
    assert other.cli("down", "--volumes").returncode == 0
    assert ha_stack.cli("health").returncode == 0
    with connect(ha_stack.coordinator) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


def test_a_changed_postgres_password_is_applied_by_up(make_stack):
    """Changing POSTGRES_PASSWORD after the first up changes the role's password on the next
    up (connecting with the old one), everywhere: coordinator, standby, pgBouncer, exporter."""
    stack = make_stack("ha")
    old = stack.password
    before = stack.cli("status", POSTGRES_PASSWORD="Changed-Pass-7391x")
    assert before.returncode == 0 and stack.cli("health").returncode == 0, "only up applies it"
    result = stack.cli("up", POSTGRES_PASSWORD="Changed-Pass-7391x")
    assert result.returncode == 0, result.stderr
    assert "coordinator: password of postgres changed" in result.stdout
    new = replace(stack.coordinator, password="Changed-Pass-7391x")
    with connect(new) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1
    with pytest.raises(ExaPGError, match="password authentication failed"):
        connect(replace(new, password=old))
    with connect(replace(stack.pgbouncer, password="Changed-Pass-7391x")) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1
    with connect(replace(stack.standby, password="Changed-Pass-7391x")) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    creds = json.loads(stack.cli("credentials", "--json").stdout)
    assert "Changed-Pass-7391x" in creds["coordinator_url"]
    assert stack.cli("health").returncode == 0
    up_lines = wait_for(lambda: [line for line in exporter_metrics(stack).splitlines() if line.startswith("pg_up{")])
    assert len(up_lines) == 2 and wait_for(lambda: all(
        line.endswith(" 1.0") for line in exporter_metrics(stack).splitlines() if line.startswith("pg_up{"))), up_lines
    assert stack.cli("up").returncode == 0, "the stored password is the new one"


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent (pg_ctl's postmasters belong to init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def exporter_metrics(stack) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{stack.settings.exporter_port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return ""


def test_leaving_ha_mode_retires_the_standby(make_stack):
    """ha -> standalone stops the standby, drops its slot (no WAL kept for it for ever) and
    sets its data aside; nothing is left running; back to ha clones a new standby."""
    stack = make_stack("ha")
    standby_pid = stack.standby_server.pidfile().pid
    result = stack.cli("up", "--mode", "standalone")
    assert result.returncode == 0, result.stderr
    assert "standby: stopped" in result.stdout
    assert not running(standby_pid)
    with connect(stack.coordinator) as conn:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0
    names = {s["name"] for s in json.loads(stack.cli("status", "--json").stdout)}
    assert "standby" not in names and "coordinator" in names
    data = stack.settings.state_dir / "data"
    assert not (data / "standby").exists() and any(p.name.startswith(".removed-standby-") for p in data.iterdir())
    back = stack.cli("up", "--mode", "ha")
    assert back.returncode == 0, back.stderr
    assert stack.cli("health").returncode == 0
    assert stack.cli("stop").returncode == 0
    assert not processes_using(stack.settings.state_dir / "data")


def test_dead_node_shown_down_then_restarted_by_up(make_stack):
    stack = make_stack("ha")
    pid = stack.standby_server.pidfile().pid
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: stack.standby_server.pidfile() is None)
    status = {s["name"]: s for s in json.loads(stack.cli("status", "--json").stdout)}
    assert status["standby"]["state"] == "stopped" and status["standby"]["healthy"] is False
    assert stack.cli("health").returncode == 1
    again = stack.cli("up")
    log = stack.standby_server.logfile.read_text(errors="replace").splitlines()[-15:]
    assert again.returncode == 0 and "standby: started" in again.stdout, (again.stderr, log)
    assert stack.cli("health").returncode == 0


def test_stop_loses_nothing_and_down_volumes_leaves_nothing(make_stack):
    stack = make_stack("ha")
    with connect(stack.coordinator) as conn:
        conn.execute("CREATE TABLE kept AS SELECT g AS id FROM generate_series(1, 1000) g")
    assert stack.cli("stop").returncode == 0
    assert all(s["state"] == "stopped" for s in json.loads(stack.cli("status", "--json").stdout))
    assert stack.cli("up").returncode == 0
    with connect(stack.standby) as conn:
        assert wait_for(lambda: conn.execute(
            "SELECT to_regclass('kept') IS NOT NULL").fetchone()[0])
        assert conn.execute("SELECT count(*) FROM kept").fetchone()[0] == 1000
    assert stack.cli("down").returncode == 0
    assert (stack.settings.state_dir / "data" / "coordinator" / "PG_VERSION").exists()
    assert stack.cli("up").returncode == 0
    with connect(stack.coordinator) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone()[0] == 1000
    state_dir = stack.settings.state_dir
    down = stack.cli("down", "--volumes")
    assert down.returncode == 0, down.stderr
    assert not state_dir.exists()
    assert not processes_using(state_dir)


def processes_using(path: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(path) in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_killed_supervisor_is_recovered_by_up(make_stack):
    stack = make_stack("standalone")
    supervisord = int((stack.settings.state_dir / "run" / "supervisord.pid").read_text())
    os.kill(supervisord, signal.SIGKILL)
    assert wait_for(lambda: not Path(f"/proc/{supervisord}").exists())
    status = {s["name"]: s for s in json.loads(stack.cli("status", "--json").stdout)}
    programs = [s for s in status.values() if s["role"] not in ("coordinator", "standby", "worker")]
    assert len(programs) >= 4, status
    for program in programs:  # they still run and answer: the processes say so, not the dead supervisor
        assert program["state"] == "running" and program["healthy"] is True, program
        assert running(program["pid"]) and "without its supervisor" in program["detail"], program
    again = stack.cli("up")
    assert again.returncode == 0, again.stderr
    assert "left by a dead supervisor" in again.stdout
    assert stack.cli("health").returncode == 0
    with connect(stack.pgbouncer) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


def test_stop_after_the_supervisor_died_stops_its_programs(make_stack):
    stack = make_stack("standalone")
    supervisord = int((stack.settings.state_dir / "run" / "supervisord.pid").read_text())
    os.kill(supervisord, signal.SIGKILL)
    assert wait_for(lambda: not Path(f"/proc/{supervisord}").exists())
    pids = [s["pid"] for s in json.loads(stack.cli("status", "--json").stdout) if s["role"] != "coordinator"]
    assert pids and all(pids), "status finds the programs the dead supervisor left"
    stopped = stack.cli("stop")
    assert stopped.returncode == 0 and "left by a dead supervisor" in stopped.stdout, stopped.stdout
    assert not any(running(pid) for pid in pids)
    assert all(s["state"] == "stopped" for s in json.loads(stack.cli("status", "--json").stdout))


@pytest.mark.parametrize("args", [["rebalance"], ["distribute", "orders", "--column", "id"], ["reference", "nation"],
                                  ["columnar", "lineitem"], ["scale", "--workers", "3"]])
def test_cluster_commands_in_ha_mode_say_so(ha_stack, args):
    """Not `function citus_rebalance_start() does not exist`: one line naming the mode, exit 2."""
    result = ha_stack.cli(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"'exapg {args[0]}' needs a cluster-mode stack" in lines[0] and "runs in ha mode" in lines[0]
    assert "exapg up --mode cluster" in lines[0]


def test_paused_replay_makes_the_standby_unhealthy(ha_stack):
    """Replay paused with WAL piling up: `health` fails and `status` and the API's inspection
    say why (what the exporter's score and the StandbyReplayPaused alert say too)."""
    from exapg.cluster.probe import direct_connector, inspect_cluster

    runtime = ha_stack.runtime
    with connect(ha_stack.standby) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            with connect(ha_stack.coordinator) as conn:
                conn.execute("CREATE TABLE paused_replay AS SELECT g, repeat('x', 200) AS pad "
                             "FROM generate_series(1, 20000) g")
            result = ha_stack.cli("health")
            assert result.returncode == 1
            assert "standby is unhealthy" in result.stderr and "WAL replay is paused" in result.stderr
            status = {s["name"]: s for s in json.loads(ha_stack.cli("status", "--json").stdout)}
            assert status["standby"]["healthy"] is False and status["standby"]["state"] == "running"
            assert status["coordinator"]["healthy"] is True
            reports = {r.name: r for r in inspect_cluster(
                runtime.stack.topology, direct_connector(lambda name: runtime.stack.dsn(name)))}
            assert reports["standby"].healthy is False and "replay is paused" in reports["standby"].error
            assert reports["standby"].upstream.lag_bytes > 0
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
            with connect(ha_stack.coordinator) as conn:
                conn.execute("DROP TABLE IF EXISTS paused_replay")
    assert wait_for(lambda: ha_stack.cli("health").returncode == 0, timeout=30)
