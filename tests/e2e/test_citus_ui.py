"""The cluster page of a Citus cluster in real headless Chromium: workers, shards, rebalance.

Skipped, with the reason, where the citus extension is not installed.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from exapg.postgres.binaries import find_binaries
from exapg.postgres.conn import connect
from tests.conftest import build_stack
from tests.e2e.browser import log_in, shot

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.skipif(not find_binaries().has_extension("citus"),
                       reason="the citus extension is not installed for PostgreSQL 15 on this machine"),
]


@pytest.fixture(scope="module")
def cluster():
    stack = build_stack("cluster", start=False)
    result = stack.cli("up", "--mode", "cluster", "--workers", "2", timeout=300)
    assert result.returncode == 0, result.stderr
    with connect(stack.coordinator) as conn:
        conn.execute("CREATE TABLE facts (id bigint PRIMARY KEY, payload text)")
        conn.execute("SELECT create_distributed_table('facts', 'id', shard_count => 6)")
        conn.execute("INSERT INTO facts SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
    yield stack
    stack.destroy()


def test_cluster_page_shows_citus_workers_shards_and_a_dead_worker(page, cluster):
    url = f"http://127.0.0.1:{cluster.settings.mgmt_backend_port}"
    log_in(page, url, "admin", cluster.runtime.stack.secrets.admin_password)
    page.click("text=Cluster")
    page.wait_for_selector("[data-testid=citus-nodes]")
    for number in (1, 2):
        row = page.locator(f"[data-testid=citus-node-{cluster.settings.worker_port(number)}] td")
        cells = [row.nth(i).text_content() for i in range(row.count())]
        assert cells[1:6] == ["worker", "active", "yes", "yes", "3"], cells  # 6 shards over 2 workers
    shot(page, "citus-cluster")

    server = cluster.server("worker2")
    os.kill(server.pidfile().pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while server.pidfile() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    dead = f"[data-testid=citus-node-{cluster.settings.worker_port(2)}]"
    page.wait_for_function(  # the page polls every 5 s
        "selector => (document.querySelector(selector)?.textContent || '').includes('failed to connect')",
        arg=dead, timeout=20_000)
    shot(page, "citus-worker-down")
    assert cluster.cli("up").returncode == 0
