"""PostgreSQL configuration: analytics tuning from the machine's size, and file rendering.

ExaPG never edits the `postgresql.conf` that initdb writes beyond one `include` line;
its own settings live in `exapg.conf`, rendered anew on every `up`, so an operator's
`ALTER SYSTEM` (postgresql.auto.conf) always wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MiB = 1024**2
GiB = 1024**3
INCLUDE_LINE = "include_if_exists = 'exapg.conf'"


@dataclass(frozen=True)
class Resources:
    memory: int  # bytes this node may use
    cpus: int


def machine_resources() -> Resources:
    """RAM and cores of this machine, or of the cgroup we run in (a container's limits)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cpus = len(os.sched_getaffinity(0))
    limit = _cgroup_memory_limit()
    quota = _cgroup_cpu_quota()
    return Resources(min(memory, limit or memory), max(1, min(cpus, quota or cpus)))


def _cgroup_memory_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def _cgroup_cpu_quota() -> int | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="utf-8").split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else max(1, int(quota) // int(period))


def _mb(value: float) -> str:
    return f"{max(1, int(value // MiB))}MB"


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


WORK_MEM_MAX = 128 * MiB


def analytics_tuning(res: Resources, max_connections: int = 100) -> dict[str, str]:
    """Settings for large scans, joins and aggregates rather than many small transactions.

    Measured on TPC-H SF 1 on 2 cores; bench/tpch/results.md has what each setting buys
    when set back to stock, side by side:
    - a quarter of memory for shared buffers, three quarters assumed cached by the OS
      (shared_buffers is where most of the gain comes from, in huge pages: see hugepages.py);
    - work_mem sized so that a few concurrent parallel queries (pgBouncer caps them) fit in a
      quarter, at most 128 MB: larger, the planner trades parallel or sorted plans for single
      in-memory hash aggregates that spill anyway (Q18);
    - parallel workers per query: half the cores (at least one), as for a warehouse: with one
      worker per core the leader and its workers fight over the cores;
    - parallel plans priced as what they cost on a dedicated node: a worker starts in about a
      millisecond and hands tuples over shared memory, so parallel_setup_cost 100 and
      parallel_tuple_cost 0.01 (stock: 1000 and 0.1); otherwise aggregates over millions of
      groups stay serial (Q18);
    - random_page_cost 2, not the SSD habit of 1.1: the data is in memory, but an index probe
      per outer row still costs CPU, and 1.1 makes the planner pick nested loops over hash
      joins on analytic joins (Q3).
    """
    mem, cpus = res.memory, res.cpus
    concurrent_sorts = 4 * max(2, cpus)
    return {
        "max_connections": str(max_connections),
        "shared_buffers": _mb(_clamp(mem * 0.25, 128 * MiB, 32 * GiB)),
        "effective_cache_size": _mb(mem * 0.75),
        "work_mem": _mb(_clamp(mem * 0.25 / concurrent_sorts, 4 * MiB, WORK_MEM_MAX)),
        "maintenance_work_mem": _mb(_clamp(mem / 16, 64 * MiB, 2 * GiB)),
        "hash_mem_multiplier": "2.0",
        "max_worker_processes": str(max(8, cpus * 2 + 4)),
        "max_parallel_workers": str(cpus),
        "max_parallel_workers_per_gather": str(max(1, cpus // 2)),
        "max_parallel_maintenance_workers": str(max(1, cpus // 2)),
        "parallel_leader_participation": "on",
        "parallel_setup_cost": "100",
        "parallel_tuple_cost": "0.01",
        "jit": "on",
        "jit_above_cost": "500000",
        "jit_inline_above_cost": "2500000",
        "jit_optimize_above_cost": "2500000",
        "random_page_cost": "2",
        "effective_io_concurrency": "200",
        "default_statistics_target": "500",
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        "max_wal_size": _mb(_clamp(mem / 4, 1 * GiB, 16 * GiB)),
        "min_wal_size": _mb(_clamp(mem / 16, 256 * MiB, 4 * GiB)),
        "wal_buffers": "16MB",
        "wal_compression": "on",
    }


def node_settings(*, port: int, listen: str, socket_dir: Path, name: str) -> dict[str, str]:
    """What every ExaPG node shares: replication readiness, logging, statistics."""
    return {
        "listen_addresses": listen,
        "port": str(port),
        "unix_socket_directories": str(socket_dir),
        "password_encryption": "scram-sha-256",
        "wal_level": "replica",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
        "max_slot_wal_keep_size": "10GB",
        "wal_log_hints": "on",
        "hot_standby": "on",
        "hot_standby_feedback": "on",
        "shared_preload_libraries": "pg_stat_statements",
        "track_io_timing": "on",
        "cluster_name": name,
        "log_line_prefix": "%m [%p] %q%u@%d ",
        "log_timezone": "UTC",
        "log_checkpoints": "on",
        "log_min_duration_statement": "10s",
    }


def citus_settings() -> dict[str, str]:
    """Citus preloaded first; logical WAL so shard moves run online (no write blocking)."""
    return {
        "shared_preload_libraries": "citus,pg_stat_statements",
        "wal_level": "logical",
        "citus.node_conninfo": "sslmode=prefer",
        "citus.shard_count": "32",
        "citus.max_background_task_executors_per_node": "2",
    }


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def render(params: Mapping[str, str], header: str) -> str:
    lines = [f"# {header}", "# Written by ExaPG on every 'exapg up'; use ALTER SYSTEM to override."]
    lines += [f"{key} = {quote(value)}" for key, value in params.items()]
    return "\n".join(lines) + "\n"


def render_hba(replication_user: str) -> str:
    """Password (SCRAM) authentication everywhere; no trust, no peer."""
    rows = [
        ("local", "all", "all", "", "scram-sha-256"),
        ("host", "all", "all", "127.0.0.1/32", "scram-sha-256"),
        ("host", "all", "all", "::1/128", "scram-sha-256"),
        ("local", "replication", replication_user, "", "scram-sha-256"),
        ("host", "replication", replication_user, "127.0.0.1/32", "scram-sha-256"),
        ("host", "replication", replication_user, "::1/128", "scram-sha-256"),
    ]
    body = "\n".join(f"{t:<6} {db:<12} {u:<12} {a:<15} {m}".rstrip() for t, db, u, a, m in rows)
    return "# Written by ExaPG: SCRAM password authentication only.\n" + body + "\n"


def ensure_include(conf: Path) -> bool:
    """Append the include of exapg.conf to postgresql.conf once; True if it was added."""
    text = conf.read_text(encoding="utf-8")
    if INCLUDE_LINE in text:
        return False
    with conf.open("a", encoding="utf-8") as handle:
        handle.write(f"\n# ExaPG settings (rendered on every 'exapg up')\n{INCLUDE_LINE}\n")
    return True
