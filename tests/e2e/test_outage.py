"""The UI with the coordinator down: a logged-in admin still sees the nodes, and the
outage itself, on the dashboard and the cluster page."""

from __future__ import annotations

import time

import pytest

from tests.e2e.browser import log_in, shot

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_the_dashboard_shows_a_coordinator_outage(page, own_api):
    log_in(page, own_api.url, "admin", own_api.admin_password)
    page.wait_for_selector("[data-testid=overview]")
    assert "2 / 2" in page.text_content("[data-testid=stat-nodes]")
    # the login left this browser a device token for later logins under a flood
    assert page.evaluate("localStorage.getItem('exapg.device.admin')")
    own_api.stack.coordinator_server.stop(timeout=60)
    try:
        page.wait_for_selector("[data-testid=outage]", timeout=20_000)
        # the coordinator is not healthy; the standby, which cannot stream from it, soon is not either
        deadline = time.monotonic() + 20
        while "0 / 2" not in page.text_content("[data-testid=stat-nodes]"):
            assert time.monotonic() < deadline, page.text_content("[data-testid=stat-nodes]")
            page.wait_for_timeout(500)
        shot(page, "dashboard-coordinator-down")
        page.click("nav >> text=Cluster")
        page.wait_for_selector("[data-testid=node-coordinator]")
        assert "down" in page.text_content("[data-testid=node-coordinator]")
        assert page.text_content("[data-testid=whoami]") == "admin · admin"  # still logged in
        shot(page, "cluster-coordinator-down")
    finally:
        own_api.stack.coordinator_server.start(timeout=60)
