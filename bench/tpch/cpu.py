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
    return waited_seconds(stat_fields(pid))


def waited_seconds(fields: list[str]) -> float:
    return sum(int(f) for f in fields[11:15]) / TICK  # utime, stime, cutime, cstime


Table = dict[int, tuple[int, float]]  # pid -> (parent's pid, process_seconds)


def process_table() -> Table:
    """Every process at this moment, read once for a whole reading."""
    table: Table = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                fields = stat_fields(int(entry.name))
            except (OSError, IndexError):
                continue  # ended while we looked
            table[int(entry.name)] = (int(fields[1]), waited_seconds(fields))
    return table


def children(pid: int, table: Table | None = None) -> list[int]:
    return [child for child, (parent, _) in (table or process_table()).items() if parent == pid]


def server_seconds(postmaster: int, table: Table | None = None) -> Counter[str]:
    """CPU seconds a PostgreSQL server (or any process and its children) has used so far,
    by kind of process (KINDS)."""
    table = table or process_table()
    used: Counter[str] = Counter({REST: table[postmaster][1]})
    for child in children(postmaster, table):
        try:
            title = (PROC / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended: its CPU is the postmaster's at the next reading
        used[next((kind for marker, kind in KINDS if marker in title), REST)] += table[child][1]
    return used


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
        table = process_table()
        values = {"bench process (DuckDB, Python)": own_seconds()}
        for name, pid in self.servers.items():
            values.update({f"{name}: {kind}": seconds for kind, seconds in server_seconds(pid, table).items()})
        values["other services"] = sum(sum(server_seconds(pid, table).values()) for pid in self.services.values())
        values["machine busy"], values["machine capacity"] = machine_seconds()
        return values

    def used(self) -> dict[str, float]:
        """CPU seconds since the meter was made, by part (a part with no CPU is left out)."""
        end = self.reading()
        return {part: round(end[part] - self.start.get(part, 0.0), 2) for part in end
                if end[part] - self.start.get(part, 0.0) > 0}
