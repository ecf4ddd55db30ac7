"""Where a load's CPU goes: CPU seconds of the bench process, of PostgreSQL servers by kind
of process, of other processes, and of the whole machine, from /proc, over a stretch of time.

A process's CPU here is its own (user and system) plus that of the children it has waited
for: the archiver's includes the archive commands it ran (pgBackRest), the postmaster's
the backends that have exited. So a server's CPU is its postmaster's plus that of its
living children, and nothing a server did is lost when a process ends between two readings.
"""

from __future__ import annotations

import os
import resource
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK")
# A server's processes by kind, from their titles (PostgreSQL 15's); the rest are its
# backends (the load's sessions), the processes that have exited, and background work.
KINDS = (("archiver", "archiver"), ("startup recovering", "WAL replay"), ("walsender", "WAL sending"),
         ("walreceiver", "WAL receiving"))
REST = "backends and the rest"


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the process name (which may hold spaces)."""
    return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def process_seconds(pid: int) -> float:
    """User and system CPU of a process and of the children it has waited for."""
    return sum(int(f) for f in stat_fields(pid)[11:15]) / TICK  # utime, stime, cutime, cstime


def children(pid: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if int(stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # ended while we looked
    return found


def server_seconds(postmaster: int) -> Counter[str]:
    """CPU seconds a PostgreSQL server has used so far, by kind of process (KINDS)."""
    used: Counter[str] = Counter({REST: process_seconds(postmaster)})
    for child in children(postmaster):
        try:
            title = (PROC / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            seconds = process_seconds(child)
        except OSError:
            continue  # it ended: its CPU is now the postmaster's, read above or at the next reading
        used[next((kind for marker, kind in KINDS if marker in title), REST)] += seconds
    return used


def tree_seconds(pid: int) -> float:
    """CPU seconds a process and its living children have used so far (a service of the stack)."""
    total = process_seconds(pid)
    for child in children(pid):
        try:
            total += process_seconds(child)
        except OSError:
            continue
    return total


def machine_seconds() -> tuple[float, float]:
    """The machine's busy CPU seconds and all its CPU seconds (busy and idle) since boot."""
    values = [int(v) for v in (PROC / "stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # user, nice, system, idle, iowait, irq, softirq, steal
    return (sum(values) - idle) / TICK, sum(values) / TICK


def own_seconds() -> float:
    """This process's CPU, all its threads, and that of the children it has waited for (the
    load runs in one: run.timed_load; DuckDB's threads are in it)."""
    return sum(usage.ru_utime + usage.ru_stime
               for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


class Meter:
    """CPU seconds over a stretch of time: of this process, of `servers` (name -> postmaster
    pid) by kind of process, of `services` (name -> pid, with their children) together, and
    of the machine."""

    def __init__(self, servers: Mapping[str, int], services: Mapping[str, int]) -> None:
        self.servers, self.services = dict(servers), dict(services)
        self.start = self.reading()

    def reading(self) -> dict[str, float]:
        values = {"bench process (DuckDB, Python)": own_seconds()}
        for name, pid in self.servers.items():
            values.update({f"{name}: {kind}": seconds for kind, seconds in server_seconds(pid).items()})
        values["other services"] = sum(tree_seconds(pid) for pid in self.services.values())
        values["machine busy"], values["machine capacity"] = machine_seconds()
        return values

    def used(self) -> dict[str, float]:
        """CPU seconds since the meter was made, by part (a part with no CPU is left out)."""
        end = self.reading()
        return {part: round(end[part] - self.start.get(part, 0.0), 2) for part in end
                if end[part] - self.start.get(part, 0.0) > 0}
