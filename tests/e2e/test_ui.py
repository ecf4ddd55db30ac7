"""The management UI in real headless Chromium against the running stack."""

from __future__ import annotations

import re
import secrets

import psycopg
import pytest

from exapg.postgres.conn import connect
from tests.api.test_queries import Sleeper
from tests.e2e.browser import log_in, shot

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_log_in_and_see_live_numbers_from_the_stack(page, api_server):
    stack = api_server.stack
    with connect(stack.coordinator) as conn:
        max_connections = conn.execute("SHOW max_connections").fetchone()[0]
    log_in(page, api_server.url, "admin", api_server.admin_password)
    page.wait_for_selector("[data-testid=overview]")
    assert page.text_content("[data-testid=whoami]") == "admin · admin"
    assert f"Database {stack.settings.postgres_db}" in page.text_content("[data-testid=stat-size]")
    assert re.search(r"\d+(\.\d)? MB", page.text_content("[data-testid=stat-size]"))
    connections = page.text_content("[data-testid=stat-connections]")
    assert re.search(rf"\d+ / {max_connections}", connections), connections
    assert "2 / 2" in page.text_content("[data-testid=stat-nodes]")
    assert "%" in page.text_content("[data-testid=stat-cache]")
    page.wait_for_selector("[data-testid='chart-Connections'] path.chart-line", state="attached",
                           timeout=20_000)
    shot(page, "dashboard")
    page.click("text=Cluster")
    page.wait_for_selector("[data-testid=node-standby]")
    standby = page.text_content("[data-testid=node-standby]")
    assert "streaming" in standby and str(stack.settings.coordinator_port) in standby
    shot(page, "cluster")


def test_cancel_a_long_query_from_the_query_monitor(page, api_server, make_user):
    operator = make_user("operator")
    sleeper = Sleeper(api_server.stack.coordinator)
    try:
        log_in(page, api_server.url, operator.username, operator.password)
        page.click("text=Queries")
        row = page.locator(f"[data-testid=query-coordinator-{sleeper.pid}]")
        row.wait_for()
        assert "pg_sleep" in row.text_content()
        assert row.locator("text=Terminate").count() == 0  # operators may not terminate
        shot(page, "queries-before-cancel")
        page.once("dialog", lambda dialog: dialog.accept())
        row.locator("button", has_text="Cancel").click()
        page.wait_for_selector("[role=status]")
        assert sleeper.finished.wait(10), "pg_sleep still running after Cancel was clicked"
        assert isinstance(sleeper.error, psycopg.errors.QueryCanceled)
        row.wait_for(state="detached")
        shot(page, "queries-after-cancel")
    finally:
        sleeper.close()


def strong_password() -> str:
    """Random, and of every class the password rule counts."""
    return f"{secrets.token_urlsafe(14)}-Aa1"


def test_admin_creates_a_user_who_then_logs_in(page, api_server, admin):
    name, password = f"ui{secrets.token_hex(3)}", strong_password()
    try:
        log_in(page, api_server.url, "admin", api_server.admin_password)
        page.click("text=Users")
        assert "three of" in page.text_content("[data-testid=password-rule]")
        page.fill("input[name=new-username]", name)
        # a weak password: the form shows the API's reason
        page.fill("input[name=new-password]", "aaaaaaaaaaaa")
        page.click("text=Create user")
        page.wait_for_selector("[data-testid=create-user] >> text=password: weak")
        page.fill("input[name=new-password]", password)
        page.select_option("select[name=new-role]", "operator")
        page.click("text=Create user")
        page.wait_for_selector(f"[data-testid=user-{name}]")
        shot(page, "users")
        page.click("text=Log out")
        log_in(page, api_server.url, name, password)
        assert page.text_content("[data-testid=whoami]") == f"{name} · operator"
        assert page.locator("nav >> text=Users").count() == 0
        shot(page, "logged-in-as-new-user")
        # the new user picks their own password
        new_password = strong_password()
        page.click("[data-testid=whoami]")
        page.fill("input[name=current-password]", password)
        page.fill("input[name=new-password]", new_password)
        page.fill("input[name=repeat-password]", new_password)
        page.click("button:has-text('Change password')")
        page.wait_for_selector("text=password changed")
        page.click("text=Log out")
        log_in(page, api_server.url, name, new_password)
        assert page.text_content("[data-testid=whoami]") == f"{name} · operator"
    finally:
        admin.delete(f"/api/users/{name}")


def test_audit_log_shows_logins(page, api_server):
    log_in(page, api_server.url, "admin", api_server.admin_password)
    page.click("text=Audit log")
    page.wait_for_selector("[data-testid=audit] tbody tr")
    assert "login" in page.text_content("[data-testid=audit]")
    shot(page, "audit")


def test_narrow_screen_has_no_horizontal_scroll(browser, api_server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        log_in(page, api_server.url, "admin", api_server.admin_password)
        page.wait_for_selector("[data-testid=overview]")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"page is {overflow}px wider than the screen"
        shot(page, "dashboard-narrow")
        page.click("text=Queries")
        page.wait_for_selector("[data-testid=queries]")
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        shot(page, "queries-narrow")
    finally:
        context.close()
