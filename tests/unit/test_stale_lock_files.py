"""A dead postmaster's postmaster.pid and socket lock file go; a live one's stay.

Real processes: a zombie (exited, never reaped: what a SIGKILLed postmaster is until its
parent reaps it) and a live process whose name is `postgres`. PostgreSQL takes either pid
for a running server's, since both answer kill(pid, 0).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from exapg.postgres.ctl import PostgresServer, lock_holder

PORT = 6543


def server(tmp_path: Path) -> PostgresServer:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "run").mkdir(exist_ok=True)
    return PostgresServer(datadir=tmp_path / "data", port=PORT, binaries=None, user=None,  # type: ignore[arg-type]
                          socket_dir=tmp_path / "run", logfile=tmp_path / "log")


def write_locks(s: PostgresServer, pid: int) -> tuple[Path, Path]:
    pidfile, lock = s.datadir / "postmaster.pid", s.socket_dir / f".s.PGSQL.{PORT}.lock"
    pidfile.write_text(f"{pid}\n{s.datadir}\n0\n{PORT}\n{s.socket_dir}\n")
    lock.write_text(f"{pid}\n{s.datadir}\n")
    return pidfile, lock


@pytest.fixture()
def zombie():
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield child.pid
    child.wait()


@pytest.fixture()
def live_postgres(tmp_path):
    """A live process named postgres (a copy of sleep)."""
    binary = tmp_path / "postgres"
    shutil.copy(shutil.which("sleep"), binary)
    child = subprocess.Popen([str(binary), "60"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/comm").read_text().strip() != "postgres":  # until the exec is done
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield child.pid
    child.kill()
    child.wait()


def test_a_zombies_files_go(tmp_path, zombie):
    s = server(tmp_path)
    pidfile, lock = write_locks(s, zombie)
    assert lock_holder(lock) is None
    assert s.remove_stale_pidfile()
    assert not pidfile.exists() and not lock.exists()


def test_a_stale_socket_lock_goes_without_a_pidfile(tmp_path, zombie):
    s = server(tmp_path)
    pidfile, lock = write_locks(s, zombie)
    pidfile.unlink()
    assert not s.remove_stale_pidfile()
    assert not lock.exists()


def test_a_live_postgres_keeps_its_files(tmp_path, live_postgres):
    s = server(tmp_path)
    pidfile, lock = write_locks(s, live_postgres)
    assert lock_holder(lock) == live_postgres
    assert not s.remove_stale_pidfile()
    assert pidfile.exists() and lock.exists()


def test_another_live_postgres_on_the_socket_keeps_its_lock(tmp_path, zombie, live_postgres):
    s = server(tmp_path)
    pidfile, lock = write_locks(s, zombie)
    lock.write_text(f"{live_postgres}\n/elsewhere\n")
    assert s.remove_stale_pidfile()
    assert not pidfile.exists() and lock.exists()
