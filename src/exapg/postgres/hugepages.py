"""Huge pages for shared buffers: reserve what a node needs before it starts, give it back after.

With gigabytes of shared buffers mapped in 4 kB pages, every new backend and every
parallel worker page-faults its way through the buffers it reads, once per 4 kB, per
query; with 2 MB pages that cost all but vanishes (bench/tpch/results.md measures it).
The kernel's pool (vm.nr_hugepages) is empty on a stock machine, so as root ExaPG grows
it by what the node needs (PostgreSQL's own `shared_memory_size_in_huge_pages`) just
before the node starts, and shrinks it by the same count when the node stops. The pages
ExaPG added are kept in a small ledger per stack, so a stop never returns pages that
others reserved.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from exapg.errors import CommandError
from exapg.postgres.binaries import PgBinaries
from exapg.proc import ServiceUser, run

NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
# One pool for the machine: every stack that changes it takes this lock first.
POOL_LOCK = Path("/run/exapg-hugepages.lock")  # only root changes the pool
MEMINFO = Path("/proc/meminfo")
# Never pin more than this share of the memory the kernel could still hand out.
MAX_SHARE_OF_AVAILABLE = 0.5


@dataclass(frozen=True)
class Pool:
    """The kernel's huge page pool, from /proc/meminfo (counts of pages)."""

    total: int
    free: int
    reserved: int  # promised to a mapping, not yet touched: not free for a new one
    page_size: int  # bytes
    mem_available: int  # bytes

    @property
    def available(self) -> int:
        return max(0, self.free - self.reserved)


def read_pool(meminfo: Path = MEMINFO) -> Pool | None:
    """The pool, or None where the kernel has no huge pages."""
    try:
        fields = dict(_meminfo_line(line) for line in meminfo.read_text(encoding="ascii").splitlines())
    except (OSError, ValueError):
        return None
    if "HugePages_Total" not in fields or not fields.get("Hugepagesize"):
        return None
    return Pool(fields["HugePages_Total"], fields["HugePages_Free"], fields["HugePages_Rsvd"],
                fields["Hugepagesize"] * 1024, fields.get("MemAvailable", 0) * 1024)


def _meminfo_line(line: str) -> tuple[str, int]:
    name, _, rest = line.partition(":")
    return name.strip(), int(rest.split()[0])


def pages_needed(binaries: PgBinaries, datadir: Path, user: ServiceUser) -> int | None:
    """Huge pages the stopped server at `datadir` would map, as PostgreSQL computes it
    from its configuration; None where it cannot tell (no huge page support)."""
    try:
        result = run([binaries("postgres"), "-D", datadir, "-C", "shared_memory_size_in_huge_pages"],
                     timeout=30, user=user, what="postgres -C shared_memory_size_in_huge_pages")
    except CommandError:
        return None
    text = result.stdout.strip()
    return int(text) if text.lstrip("-").isdigit() and int(text) > 0 else None


def can_reserve(nr_path: Path = NR_HUGEPAGES) -> bool:
    return os.geteuid() == 0 and os.access(nr_path, os.W_OK)


@contextlib.contextmanager
def pool_lock(path: Path = POOL_LOCK) -> Iterator[None]:
    """Serialize changes of the pool (and of the ledgers) across stacks; waits its turn."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _set_total(count: int, nr_path: Path) -> None:
    nr_path.write_text(f"{max(0, count)}\n", encoding="ascii")


def reserve(needed: int, *, nr_path: Path = NR_HUGEPAGES, meminfo: Path = MEMINFO) -> int:
    """Grow the pool so that `needed` pages are free for one new mapping; the pages added.

    All or nothing: if the kernel cannot find them (fragmented memory) or they would pin
    more than half of the memory still available, the pool is left as it was and 0 is
    returned; PostgreSQL (huge_pages=try) then maps ordinary pages.
    """
    pool = read_pool(meminfo)
    if pool is None or pool.available >= needed:
        return 0
    missing = needed - pool.available
    if missing * pool.page_size > pool.mem_available * MAX_SHARE_OF_AVAILABLE:
        return 0
    _set_total(pool.total + missing, nr_path)
    after = read_pool(meminfo)
    if after is None or after.available < needed:
        _set_total(pool.total, nr_path)
        return 0
    return missing


def release(count: int, *, nr_path: Path = NR_HUGEPAGES, meminfo: Path = MEMINFO) -> None:
    """Shrink the pool by `count` pages (pages still mapped become surplus, freed on unmap)."""
    pool = read_pool(meminfo)
    if count > 0 and pool is not None:
        _set_total(pool.total - count, nr_path)


def mapped_kb(pid: int) -> int:
    """Size of a process's mappings backed by huge pages (kB), from /proc/PID/smaps."""
    total, size = 0, 0
    for line in Path(f"/proc/{pid}/smaps").read_text(encoding="ascii", errors="replace").splitlines():
        if line.startswith("Size:"):
            size = int(line.split()[1])
        elif line.startswith("KernelPageSize:") and int(line.split()[1]) > 4:
            total += size
    return total


class Ledger:
    """Pages ExaPG added to the pool, per node of one stack (a JSON file in its state dir)."""

    def __init__(self, path: Path, user: ServiceUser) -> None:
        self.path = path
        self.user = user

    def read(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items() if isinstance(v, int) and v > 0}

    def add(self, node: str, pages: int) -> None:
        data = self.read()
        data[node] = data.get(node, 0) + pages
        self._write(data)

    def take(self, node: str) -> int:
        """Forget the node's pages and return how many there were."""
        data = self.read()
        pages = data.pop(node, 0)
        if pages:
            self._write(data)
        return pages

    def _write(self, data: dict[str, int]) -> None:
        if not data:
            self.path.unlink(missing_ok=True)
            return
        self.user.write_file(self.path, json.dumps(data) + "\n", 0o600)
