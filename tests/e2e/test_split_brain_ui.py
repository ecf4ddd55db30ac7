"""The cluster page of a stack whose standby was promoted by hand: a red banner names both
writable nodes, the one pgBouncer serves, and the way back."""

from __future__ import annotations

import pytest

from tests.e2e.browser import log_in, shot

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_the_cluster_page_shows_a_split_brain(page, split_api):
    log_in(page, split_api.url, "admin", split_api.admin_password)
    page.click("nav >> text=Cluster")
    banner = page.locator("[data-testid=split-brain]")
    banner.wait_for()
    text = banner.text_content()
    assert "coordinator (timeline 1)" in text and "standby (timeline 2)" in text, text
    assert "pgBouncer sends clients to coordinator" in text
    assert "exapg rejoin standby" in text and "a standby again of coordinator" in text
    assert "what was written on standby since the promotion is lost" in text
    assert "No switchover or failover is recorded" in text
    standby = page.text_content("[data-testid=node-standby]")
    assert "configured standby" in standby and "writable primary" in standby
    assert "pgBouncer target" in page.text_content("[data-testid=node-coordinator]")
    shot(page, "cluster-split-brain")
