"""The Backups page in real headless Chromium against the running stack (pgBackRest for real)."""

from __future__ import annotations

import pytest

from exapg.backup.pgbackrest import binary
from tests.e2e.browser import log_in, shot

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.skipif(binary() is None, reason="pgBackRest is not installed (apt-get install pgbackrest)"),
]
BACKUP_WAIT_MS = 300_000


def test_an_admin_starts_a_backup_and_sees_it_listed(page, api_server, admin):
    log_in(page, api_server.url, "admin", api_server.admin_password)
    page.click("nav >> text=Backups")
    page.wait_for_selector("[data-testid=backups]")
    page.select_option("select[name=backup-type]", "full")
    page.click("text=Start backup")
    page.wait_for_selector("[data-testid=backup-job] >> text=running", timeout=10_000)
    assert page.is_disabled("text=Start backup")  # one at a time
    shot(page, "backups-running")
    page.wait_for_selector("[data-testid=backup-job] >> text=Backup done", timeout=BACKUP_WAIT_MS)
    job = admin.get("/api/backups/job").json()
    (label,) = [b["label"] for b in job["backups"] if b["stanza"] == "coordinator"]
    row = page.locator(f"[data-testid='backup-{label}']")
    row.wait_for()
    assert "full" in row.text_content() and "coordinator" in row.text_content()
    first = page.locator("[data-testid=backups] tbody tr").first  # newest first
    assert label in first.text_content()
    assert label in page.text_content("[data-testid=backup-job]")
    shot(page, "backups-done")


def test_a_viewer_sees_the_backups_but_no_start_control(page, api_server, make_user):
    viewer = make_user("viewer")
    log_in(page, api_server.url, viewer.username, viewer.password)
    page.click("nav >> text=Backups")
    page.wait_for_selector("[data-testid=backups]")
    page.wait_for_selector("[data-testid=restorable-coordinator]")
    assert page.locator("[data-testid=start-backup]").count() == 0
    assert page.locator("text=Start backup").count() == 0
    shot(page, "backups-viewer")
