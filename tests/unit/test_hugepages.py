"""The huge page pool as /proc/meminfo reports it, the reservation rules, and the ledger."""

import os
from pathlib import Path

from exapg.postgres import hugepages
from exapg.proc import ServiceUser

MEMINFO = """MemTotal:       24000000 kB
MemFree:        20000000 kB
MemAvailable:   {available} kB
HugePages_Total:    {total}
HugePages_Free:     {free}
HugePages_Rsvd:     {rsvd}
HugePages_Surp:        0
Hugepagesize:       2048 kB
"""


def meminfo(tmp_path: Path, *, total: int = 0, free: int = 0, rsvd: int = 0, available: int = 16_000_000) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(MEMINFO.format(total=total, free=free, rsvd=rsvd, available=available))
    return path


def pool_file(tmp_path: Path, pages: int) -> Path:
    """A stand-in for /proc/sys/vm/nr_hugepages holding `pages`."""
    path = tmp_path / "nr_hugepages"
    path.write_text(f"{pages}\n")
    return path


def test_pool_counts_reserved_pages_as_taken(tmp_path: Path):
    pool = hugepages.read_pool(meminfo(tmp_path, total=100, free=80, rsvd=30))
    assert pool is not None
    assert (pool.total, pool.available, pool.page_size) == (100, 50, 2 * 1024 * 1024)
    assert pool.mem_available == 16_000_000 * 1024


def test_no_pool_without_huge_page_lines(tmp_path: Path):
    path = tmp_path / "meminfo"
    path.write_text("MemTotal: 1000 kB\n")
    assert hugepages.read_pool(path) is None
    assert hugepages.read_pool(tmp_path / "absent") is None


def test_enough_free_pages_reserve_nothing(tmp_path: Path):
    nr = pool_file(tmp_path, 100)
    assert hugepages.reserve(40, nr_path=nr, meminfo=meminfo(tmp_path, total=100, free=100)) == 0
    assert nr.read_text() == "100\n"


def test_never_pins_more_than_half_of_the_available_memory(tmp_path: Path):
    nr = pool_file(tmp_path, 0)
    # 3000 pages of 2 MB = 6 GB, with 8 GB available: more than half
    assert hugepages.reserve(3000, nr_path=nr, meminfo=meminfo(tmp_path, available=8 * 1024 * 1024)) == 0
    assert nr.read_text() == "0\n"


def test_a_pool_the_kernel_does_not_grow_is_put_back(tmp_path: Path):
    nr = pool_file(tmp_path, 10)
    # the meminfo file does not change after the write: the kernel "found" no pages
    assert hugepages.reserve(50, nr_path=nr, meminfo=meminfo(tmp_path, total=10, free=10)) == 0
    assert nr.read_text() == "10\n"


def test_ledger_adds_and_takes_per_node(tmp_path: Path):
    ledger = hugepages.Ledger(tmp_path / "hugepages.json", ServiceUser("me", os.geteuid(), os.getegid(), "/"))
    assert ledger.read() == {}
    ledger.add("coordinator", 70)
    ledger.add("standby", 70)
    ledger.add("coordinator", 5)
    assert ledger.read() == {"coordinator": 75, "standby": 70}
    assert ledger.take("coordinator") == 75
    assert ledger.take("coordinator") == 0
    assert ledger.take("standby") == 70
    assert not (tmp_path / "hugepages.json").exists()
