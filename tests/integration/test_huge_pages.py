"""Huge pages: a node's shared memory in 2 MB pages that ExaPG reserved, and given back on stop."""

from __future__ import annotations

import os
import signal
import time

import pytest

from exapg.postgres import hugepages
from exapg.runtime import nodes

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not hugepages.can_reserve() or hugepages.read_pool() is None,
                       reason="needs root and a kernel whose huge page pool can be resized"),
]


def pool_total() -> int:
    pool = hugepages.read_pool()
    assert pool is not None
    return pool.total


def test_nodes_map_reserved_huge_pages_and_stop_gives_them_back(make_stack):
    before = pool_total()
    stack = make_stack("ha")
    for node in ("coordinator", "standby"):
        pidfile = stack.server(node).pidfile()
        assert pidfile is not None
        assert hugepages.mapped_kb(pidfile.pid) >= 128 * 1024, f"{node}: shared buffers not in huge pages"
    ledger = nodes.huge_page_ledger(stack.runtime.stack).read()
    assert set(ledger) <= {"coordinator", "standby"}
    assert pool_total() == before + sum(ledger.values())
    assert "huge_pages = 'try'" in (stack.server("coordinator").datadir / "exapg.conf").read_text()

    assert stack.cli("stop").returncode == 0
    assert pool_total() == before
    assert nodes.huge_page_ledger(stack.runtime.stack).read() == {}

    assert stack.cli("up", "--mode", "ha").returncode == 0  # reserved again on the next start
    assert hugepages.mapped_kb(stack.coordinator_server.pidfile().pid) > 0


def test_huge_pages_off_reserves_nothing(make_stack):
    before = pool_total()
    stack = make_stack("standalone", EXAPG_HUGE_PAGES="off")
    assert hugepages.mapped_kb(stack.coordinator_server.pidfile().pid) == 0
    assert nodes.huge_page_ledger(stack.runtime.stack).read() == {}
    assert pool_total() == before
    assert "huge_pages = 'off'" in (stack.coordinator_server.datadir / "exapg.conf").read_text()


def test_a_killed_node_gives_its_pages_back_at_stop(make_stack):
    before = pool_total()
    stack = make_stack("standalone")
    pid = stack.coordinator_server.pidfile().pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while stack.coordinator_server.pidfile() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.cli("stop").returncode == 0
    assert pool_total() == before


def test_huge_pages_on_without_the_pages_is_one_clear_line(make_stack):
    # 32 GB of shared buffers: more than ExaPG pins on this machine, so nothing is reserved
    stack = make_stack("standalone", start=False, EXAPG_HUGE_PAGES="on", EXAPG_MEMORY_LIMIT="256GB")
    before = pool_total()
    result = stack.cli("up", "--mode", "standalone")
    assert result.returncode == 5, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "EXAPG_HUGE_PAGES=on needs" in lines[0] and "vm.nr_hugepages" in lines[0]
    assert pool_total() == before
    assert stack.coordinator_server.pidfile() is None
