"""Bad input and faults: one clear line, the documented exit code, nothing lost."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from exapg.postgres.binaries import find_binaries
from exapg.postgres.conn import connect
from tests.conftest import EXAPG, new_state_dir, run_cli, stack_environment

pytestmark = pytest.mark.integration


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def env():
    return stack_environment(new_state_dir())


def test_port_in_use_exits_5(env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", int(env["COORDINATOR_PORT"])))
        sock.listen()
        result = run_cli("up", "--mode", "standalone", env=env)
    assert result.returncode == 5
    assert "already in use" in one_error_line(result)
    assert run_cli("down", "--volumes", env=env).returncode == 0


def test_missing_binaries_exit_4(env):
    result = run_cli("up", env={**env, "EXAPG_PG_BINDIR": "/nonexistent/bin"})
    assert result.returncode == 4
    assert "apt-get install postgresql-15" in one_error_line(result)


def test_unwritable_state_dir_exits_5(env):
    result = run_cli("up", env={**env, "EXAPG_STATE_DIR": "/etc/hostname/exapg"})
    assert result.returncode == 5
    assert "state directory" in one_error_line(result)
    validate = run_cli("config", "validate", env={**env, "EXAPG_STATE_DIR": "/etc/hostname/exapg"})
    assert validate.returncode == 5 and "EXAPG_STATE_DIR" in validate.stderr


def test_invalid_parameters_exit_2(env):
    assert run_cli("up", "--mode", "sideways", env=env).returncode == 2
    assert run_cli("up", "--workers", "-1", env=env).returncode == 2
    assert run_cli("nosuchcommand", env=env).returncode == 2


def test_invalid_settings_exit_5_listing_every_problem(env):
    bad = {**env, "COORDINATOR_PORT": "99999", "POOL_MODE": "nope"}
    result = run_cli("status", env=bad)
    assert result.returncode == 5
    assert "COORDINATOR_PORT" in result.stderr and "POOL_MODE" in result.stderr
    dup = {**env, "STANDBY_PORT": env["COORDINATOR_PORT"], "POSTGRES_PASSWORD": "weak"}
    validate = run_cli("config", "validate", env=dup)
    assert validate.returncode == 5
    lines = validate.stderr.strip().splitlines()
    assert any("both use port" in line for line in lines)
    assert any("POSTGRES_PASSWORD: too short" in line for line in lines)
    assert "weak" not in validate.stderr.replace("POSTGRES_PASSWORD: too short", "")


def test_config_validate_reports_taken_ports_ranges_and_the_state_dir(env, tmp_path):
    import socket

    out_of_range = run_cli("config", "validate", env={**env, "EXPORTER_PORT": "0", "PROMETHEUS_PORT": "70000"})
    assert out_of_range.returncode == 5
    assert "EXPORTER_PORT" in out_of_range.stderr and "PROMETHEUS_PORT" in out_of_range.stderr
    blocked = tmp_path / "file"
    blocked.write_text("a file where the state directory's parent should be")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        bad = {**env, "PGBOUNCER_PORT": str(taken.getsockname()[1]), "EXAPG_STATE_DIR": str(blocked / "stack")}
        result = run_cli("config", "validate", env=bad)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 5
    assert any("PGBOUNCER_PORT" in line and "already in use" in line for line in lines), result.stderr
    assert any(str(blocked) in line for line in lines), result.stderr
    assert len(lines) >= 2

def binaries_without_citus(tmp_path: Path) -> Path:
    """The machine's PostgreSQL binaries in a layout whose share directory has no Citus."""
    real = find_binaries()
    bindir = tmp_path / "lib" / "postgresql" / real.bindir.parent.name / "bin"
    bindir.mkdir(parents=True)
    for binary in real.bindir.iterdir():
        if binary.name != "pg_config":  # without it the share directory is found beside bin/
            (bindir / binary.name).symlink_to(binary.resolve())
    (tmp_path / "share" / "postgresql" / real.bindir.parent.name / "extension").mkdir(parents=True)
    return bindir


def test_cluster_mode_without_citus_exits_4(env, tmp_path):
    bindir = binaries_without_citus(tmp_path)
    result = run_cli("up", "--mode", "cluster", env={**env, "EXAPG_PG_BINDIR": str(bindir)})
    assert result.returncode == 4
    line = one_error_line(result)
    assert "citus" in line and "--mode standalone|ha" in line
    assert not (Path(env["EXAPG_STATE_DIR"]) / "data").exists()


def test_corrupted_state_file_exits_5_and_keeps_data(make_stack):
    stack = make_stack("standalone")
    with connect(stack.coordinator) as conn:
        conn.execute("CREATE TABLE precious AS SELECT 1 AS x")
    stack.runtime.stop()
    (stack.settings.state_dir / "state.json").write_text("{garbage")
    result = stack.cli("up")
    assert result.returncode == 5
    assert "corrupted" in one_error_line(result)
    assert (stack.settings.state_dir / "data" / "coordinator" / "PG_VERSION").exists()
    (stack.settings.state_dir / "state.json").unlink()
    assert stack.cli("up", "--mode", "standalone").returncode == 0
    with connect(stack.coordinator) as conn:
        assert conn.execute("SELECT x FROM precious").fetchone()[0] == 1


def test_standby_that_cannot_clone_its_primary(make_stack):
    stack = make_stack("standalone")
    with connect(stack.coordinator) as conn:
        conn.execute("ALTER SYSTEM SET max_wal_senders = 0")
    stack.runtime.stop()
    assert stack.cli("up").returncode == 0  # restarts with no WAL senders
    result = stack.cli("up", "--mode", "ha")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "standby: cannot clone coordinator" in line
    assert not (stack.settings.state_dir / "data" / "standby").exists()
    with connect(stack.coordinator) as conn:
        conn.execute("ALTER SYSTEM RESET max_wal_senders")
    stack.runtime.stop()
    assert stack.cli("up", "--mode", "ha").returncode == 0
    assert stack.cli("health").returncode == 0


def test_interrupted_up_is_finished_by_the_next(env):
    state_dir = new_state_dir()
    env = {**env, "EXAPG_STATE_DIR": str(state_dir)}
    proc = subprocess.Popen([*EXAPG, "up", "--mode", "ha"], env={**env, "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (state_dir / "data" / "coordinator" / "PG_VERSION").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        finish = run_cli("up", env=env)
        assert finish.returncode == 0, finish.stderr
        assert run_cli("health", env=env).returncode == 0
    finally:
        run_cli("down", "--volumes", env=env)


@pytest.mark.parametrize("args", [["up", "--backend", "docker"], ["scale", "--workers", "3", "--backend", "docker"],
                                  ["status"], ["health"], ["stop"], ["down"], ["logs"]])
def test_docker_backend_without_an_engine_exits_4(env, args):
    """--backend docker, or EXAPG_BACKEND=docker for every command of the runtime interface."""
    result = run_cli(*args, env={**env, "DOCKER_HOST": "unix:///nonexistent.sock", "EXAPG_BACKEND": "docker"})
    assert result.returncode == 4
    assert "Docker engine" in one_error_line(result)


def test_an_unknown_backend_exits_2(env):
    result = run_cli("scale", "--workers", "3", "--backend", "kubernetes", env=env)
    assert result.returncode == 2
    assert "--backend must be local or docker" in one_error_line(result)


def snapshot(stack) -> dict[str, object]:
    """What a refused `up` must leave alone: stored secrets, rendered configuration, processes."""
    root = stack.settings.state_dir
    files = [root / "secrets.json", root / "pgpass", root / "state.json", root / "conf" / "pgbouncer.ini",
             root / "conf" / "supervisord.conf", *sorted((root / "data").glob("*/exapg.conf"))]
    pids = {s["name"]: s["pid"] for s in json.loads(stack.cli("status", "--json").stdout)}
    return {"files": {str(p): p.read_bytes() for p in files}, "pids": pids}


def test_up_refuses_every_bad_setting_and_changes_nothing(make_stack):
    """The outside probe's values, all at once, on a running stack: every problem on its own
    line, exit 5, no secret stored, no configuration rendered, no process touched."""
    stack = make_stack("ha")
    before = snapshot(stack)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        bad = {"API_SECRET_KEY": "short", "POSTGRES_PASSWORD": "password", "EXAPG_LISTEN_ADDRESS": "999.1.1.1",
               "STANDBY_PORT": stack.env["COORDINATOR_PORT"], "EXAPG_MEMORY_LIMIT": "1"}
        started = time.monotonic()
        result = stack.cli("up", **bad)
        taken_result = stack.cli("up", PGBOUNCER_PORT=str(taken.getsockname()[1]))
    assert time.monotonic() - started < 30, "refused at once, not after a start timeout"
    assert result.returncode == 5, result.stderr
    lines = result.stderr.strip().splitlines()
    for wanted in ("API_SECRET_KEY: too short", "POSTGRES_PASSWORD: too short", "EXAPG_LISTEN_ADDRESS: '999.1.1.1'",
                   "COORDINATOR_PORT and STANDBY_PORT", "EXAPG_MEMORY_LIMIT:"):
        assert any(wanted in line for line in lines), (wanted, result.stderr)
    assert len(lines) == 5 and "Traceback" not in result.stderr
    assert taken_result.returncode == 5
    assert "PGBOUNCER_PORT" in one_error_line(taken_result) and "already in use" in taken_result.stderr
    assert snapshot(stack) == before
    with connect(stack.coordinator) as conn:  # the stored password still opens the coordinator
        assert conn.execute("SELECT 1").fetchone()[0] == 1
    again = stack.cli("up")  # the stack's own ports are not "taken" by itself
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
    assert stack.cli("config", "validate").returncode == 0


def test_restart_with_bad_settings_stops_nothing(make_stack):
    stack = make_stack("standalone")
    before = snapshot(stack)
    result = stack.cli("restart", POSTGRES_PASSWORD="password")
    assert result.returncode == 5 and "POSTGRES_PASSWORD: too short" in one_error_line(result)
    assert snapshot(stack) == before
