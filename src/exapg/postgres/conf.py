"""PostgreSQL configuration: analytics tuning from the machine's size, and file rendering.

ExaPG never edits the `postgresql.conf` that initdb writes beyond one `include` line;
its own settings live in `exapg.conf`, rendered anew on every `up`, so an operator's
`ALTER SYSTEM` (postgresql.auto.conf) always wins.

The Docker image's config/postgresql files are rendered by these same functions
(tools/render_config.py, `make config`), with the container's addresses, paths and limits
as parameters. Standard library only: the image runs this module for its TLS pg_hba.conf.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MiB = 1024**2
GiB = 1024**3
INCLUDE_LINE = "include_if_exists = 'exapg.conf'"


@dataclass(frozen=True)
class Resources:
    memory: int  # bytes this node may use
    cpus: int
    shm: int | None = None  # bytes of /dev/shm when it is small (a container's shm_size)


# What the Docker image's configuration is rendered for: docker-compose.yml's coordinator
# limits (4 GB, 2 CPUs) and every PostgreSQL service's shm_size (256 MB), as in the Docker specification.
CONTAINER = Resources(memory=4 * GiB, cpus=2, shm=256 * MiB)


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
HASH_MEM_MULTIPLIER = 2.0


def _work_mem(res: Resources) -> float:
    """A quarter of memory over the concurrent sorts, at most WORK_MEM_MAX; with a small
    /dev/shm, small enough that one parallel hash join (its table is shared memory of
    work_mem x hash_mem_multiplier per participant) fits in half of it."""
    work_mem = _clamp(res.memory * 0.25 / (4 * max(2, res.cpus)), 4 * MiB, WORK_MEM_MAX)
    if res.shm is not None:
        participants = 1 + max(1, res.cpus // 2)
        work_mem = min(work_mem, max(4 * MiB, res.shm / 2 / (HASH_MEM_MULTIPLIER * participants)))
    return work_mem


def analytics_tuning(res: Resources, max_connections: int = 100) -> dict[str, str]:
    """Settings for large scans, joins and aggregates rather than many small transactions.

    Measured on TPC-H SF 1 on 2 cores; bench/tpch/results.md has what each setting buys
    when set back to stock, side by side:
    - a quarter of memory for shared buffers, three quarters assumed cached by the OS
      (shared_buffers is where most of the gain comes from, in huge pages: see hugepages.py);
    - work_mem sized so that a few concurrent parallel queries (pgBouncer caps them) fit in a
      quarter, at most 128 MB: larger, the planner trades parallel or sorted plans for single
      in-memory hash aggregates that spill anyway (Q18); in a container with a small /dev/shm
      (Resources.shm) also small enough for a parallel hash join to fit in it;
    - parallel workers per query: half the cores (at least one), as for a warehouse: with one
      worker per core the leader and its workers fight over the cores;
    - parallel plans priced as what they cost on a dedicated node: a worker starts in about a
      millisecond and hands tuples over shared memory, so parallel_setup_cost 100 and
      parallel_tuple_cost 0.01 (stock: 1000 and 0.1); otherwise aggregates over millions of
      groups stay serial (Q18);
    - JIT compilation from a plan cost of 200000 (stock: 100000): compiling takes tens of
      milliseconds, repaid by expressions evaluated over millions of rows (Q1's aggregates
      over all of lineitem) but not by short joins; optimizing and inlining the compiled code
      only from 2500000 (stock: 500000), where queries run for seconds;
    - random_page_cost 2, not the SSD habit of 1.1: the data is in memory, but an index probe
      per outer row still costs CPU, and 1.1 makes the planner pick nested loops over hash
      joins on analytic joins (Q3).
    """
    mem, cpus = res.memory, res.cpus
    return {
        "max_connections": str(max_connections),
        "shared_buffers": _mb(_clamp(mem * 0.25, 128 * MiB, 32 * GiB)),
        "effective_cache_size": _mb(mem * 0.75),
        "work_mem": _mb(_work_mem(res)),
        "maintenance_work_mem": _mb(_clamp(mem / 16, 64 * MiB, 2 * GiB)),
        "hash_mem_multiplier": str(HASH_MEM_MULTIPLIER),
        "max_worker_processes": str(max(8, cpus * 2 + 4)),
        "max_parallel_workers": str(cpus),
        "max_parallel_workers_per_gather": str(max(1, cpus // 2)),
        "max_parallel_maintenance_workers": str(max(1, cpus // 2)),
        "parallel_leader_participation": "on",
        "parallel_setup_cost": "100",
        "parallel_tuple_cost": "0.01",
        "jit": "on",
        "jit_above_cost": "200000",
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
        # full-page images compressed with lz4, not pglz ("on"): lz4 spends far less CPU per
        # page, which counts in an index build or a bulk load (every page they write is logged)
        "wal_compression": "lz4",
    }


def node_settings(*, port: int, listen: str, socket_dir: Path, name: str | None) -> dict[str, str]:
    """What every ExaPG node shares: replication readiness, logging, statistics.

    name is the node's cluster_name (process titles, standbys' application_name); None
    leaves it out, as in the Docker image's one file for every container.
    """
    params = {
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
        "cluster_name": name or "",
        "log_line_prefix": "%m [%p] %q%u@%d ",
        "log_timezone": "UTC",
        "log_checkpoints": "on",
        "log_min_duration_statement": "10s",
        "log_lock_waits": "on",
        "log_temp_files": "64MB",
        "log_autovacuum_min_duration": "10s",
    }
    if name is None:
        del params["cluster_name"]
    return params


def citus_settings() -> dict[str, str]:
    """Citus preloaded first; logical WAL so shard moves run online (no write blocking)."""
    return {
        "shared_preload_libraries": "citus,pg_stat_statements",
        "wal_level": "logical",
        "citus.node_conninfo": "sslmode=prefer",
        "citus.shard_count": "32",
        "citus.max_background_task_executors_per_node": "2",
    }


def server_settings(
    *, port: int, listen: str, socket_dir: Path, name: str | None, resources: Resources,
    huge_pages: str, citus: bool,
) -> dict[str, str]:
    """A node's whole configuration: what every node shares, tuning, and Citus in cluster mode."""
    params = node_settings(port=port, listen=listen, socket_dir=socket_dir, name=name)
    params.update(analytics_tuning(resources))
    params["huge_pages"] = huge_pages
    if citus:
        params.update(citus_settings())
    return params


# Settings that belong to where a server runs (addresses, paths, a node's name, how the host
# provides huge pages, a standby's primary), not to how ExaPG tunes it. The memory and CPU
# ones (analytics_tuning's, from Resources) differ with the resources given, by the same
# formulas. Every other setting is the same for the local runtime and the Docker image;
# tests/unit/test_conf_files.py and tests/integration/test_local_stack.py hold them to it.
RUNTIME_SPECIFIC = frozenset({
    "listen_addresses", "port", "unix_socket_directories", "cluster_name", "hba_file", "huge_pages",
    "primary_conninfo", "primary_slot_name",
    # WAL archiving goes through the local stack's pgBackRest (runtime/archiving.py); the
    # image backs up with pg_basebackup into /backup instead.
    "archive_mode", "archive_command", "archive_timeout",
})
IMAGE_SOCKET_DIR = Path("/var/run/postgresql")
IMAGE_HBA_FILE = "/etc/postgresql/pg_hba.conf"


def image_settings(
    resources: Resources = CONTAINER, *, socket_dir: Path = IMAGE_SOCKET_DIR,
    hba_file: str = IMAGE_HBA_FILE, citus: bool = True,
) -> dict[str, str]:
    """The exapg/postgres image's configuration: the local runtime's with the container's
    addresses and paths, one file for every node (the entrypoint drops Citus when absent)."""
    params = server_settings(
        port=5432, listen="*", socket_dir=socket_dir, name=None, resources=resources,
        huge_pages="try", citus=citus,
    )
    params["hba_file"] = hba_file
    return params


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


LOCAL_NOTE = "Written by ExaPG on every 'exapg up'; use ALTER SYSTEM to override."


def render(params: Mapping[str, str], header: str, note: str = LOCAL_NOTE) -> str:
    lines = [f"# {line}".rstrip() for line in f"{header}\n{note}".splitlines()]
    lines += [f"{key} = {quote(value)}" for key, value in params.items()]
    return "\n".join(lines) + "\n"


LOCAL_HBA_ADDRESSES = ("127.0.0.1/32", "::1/128")
HBA_NOTE = "Written by ExaPG: SCRAM password authentication only."
SCRAM = "scram-sha-256"


def render_hba(
    replication_user: str, addresses: Sequence[str] = LOCAL_HBA_ADDRESSES, note: str = HBA_NOTE,
    *, tls_from: Sequence[str] = (),
) -> str:
    """Password (SCRAM) authentication everywhere; no trust, no peer.

    The local runtime admits its own machine and its replication user; the Docker image
    ("all", ("all",)) every address, as clients reach it through Docker's networks. With
    tls_from (the Docker network's gateway, where clients of published ports come from)
    those addresses must use TLS, and so must any address not in `addresses`.
    """
    rows = []
    for database, user in (("all", "all"), ("replication", replication_user)):
        rows.append(("local", database, user, "", SCRAM))
        rows += [("hostnossl", database, user, address, "reject") for address in tls_from]
        rows += [("host", database, user, address, SCRAM) for address in addresses]
        if tls_from:
            rows.append(("hostssl", database, user, "all", SCRAM))
    width = 9 if tls_from else 6
    body = "\n".join(f"{t:<{width}} {db:<12} {u:<12} {a:<15} {m}".rstrip() for t, db, u, a, m in rows)
    comments = "\n".join(f"# {line}".rstrip() for line in note.splitlines())
    return comments + "\n" + body + "\n"


TLS_HBA_NOTE = "Written by exapg-entrypoint (POSTGRES_SSL_REQUIRE=on): TLS for every client from outside."


def main(argv: Sequence[str] | None = None) -> int:
    """`python3 -m exapg.postgres.conf tls-hba NETWORK GATEWAY`: the exapg/postgres image's
    pg_hba.conf when TLS is required of clients from outside its network (the entrypoint
    runs it with POSTGRES_SSL_REQUIRE=on); standard library only, as in the image."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "tls-hba":
        print("usage: python3 -m exapg.postgres.conf tls-hba NETWORK GATEWAY", file=sys.stderr)
        return 2
    network, gateway = args[1], args[2]
    sys.stdout.write(render_hba("all", ("127.0.0.1/32", network), TLS_HBA_NOTE, tls_from=(f"{gateway}/32",)))
    return 0


def ensure_include(conf: Path) -> bool:
    """Append the include of exapg.conf to postgresql.conf once; True if it was added."""
    text = conf.read_text(encoding="utf-8")
    if INCLUDE_LINE in text:
        return False
    with conf.open("a", encoding="utf-8") as handle:
        handle.write(f"\n# ExaPG settings (rendered on every 'exapg up')\n{INCLUDE_LINE}\n")
    return True


if __name__ == "__main__":
    sys.exit(main())
