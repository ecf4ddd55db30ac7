"""bench/tpch/cpu.py: the CPU a load used, read from /proc, with nothing lost when a process
ends between two readings."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "bench_cpu", Path(__file__).resolve().parents[2] / "bench" / "tpch" / "cpu.py")
assert SPEC and SPEC.loader
cpu = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(cpu)

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n{then}"


def burner(seconds: float, then: str = "") -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", BURN.format(seconds=seconds, then=then)])


def test_the_cpu_of_a_child_that_ended_is_counted_with_the_bench_process() -> None:
    meter = cpu.Meter({}, {})
    burner(0.5).wait()
    used = meter.used()
    assert used["bench process (DuckDB, Python)"] >= 0.45
    assert used["machine busy"] >= 0.45
    assert used["machine capacity"] >= used["machine busy"]


def test_a_server_keeps_the_cpu_of_its_processes_whether_they_run_or_ended() -> None:
    """A stand-in postmaster (a shell) with two children. One burns and ends: its CPU is then
    the shell's (waited for). The other, titled as a standby's WAL replay, burns and sleeps
    on: its CPU is counted under that kind."""
    burn = BURN.format(seconds=0.4, then="")
    script = (f"{sys.executable} -c '{burn}'; "
              f"(exec -a 'postgres: standby: startup recovering 00000001' /usr/bin/python3 -c "
              f"'{BURN.format(seconds=0.4, then='time.sleep(30)')}') & wait")
    shell = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        now = cpu.server_seconds(shell.pid)
        while time.monotonic() < deadline and not (now["WAL replay"] >= 0.35 and now[cpu.REST] >= 0.35):
            time.sleep(0.1)
            now = cpu.server_seconds(shell.pid)
        assert now["WAL replay"] >= 0.35 and now[cpu.REST] >= 0.35, now
        assert set(now) == {"WAL replay", cpu.REST}
        assert len(cpu.children(shell.pid)) == 1  # only the one still sleeping
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()


def test_a_process_that_is_gone_cannot_be_read() -> None:
    with pytest.raises(OSError):
        cpu.process_seconds(2 ** 22 + 1)  # above the largest pid_max: never a process
