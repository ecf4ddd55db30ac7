"""The query monitor against real sessions: cancel and terminate really act."""

from __future__ import annotations

import contextlib
import threading
import time

import psycopg
import pytest

from exapg.postgres.conn import connect

pytestmark = pytest.mark.integration


class Sleeper:
    """A session running pg_sleep in a thread; remembers how it ended."""

    def __init__(self, dsn, seconds: int = 60) -> None:
        self.conn = connect(dsn, statement_timeout_ms=0)
        self.pid = self.conn.info.backend_pid
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)
        self.thread.start()

    def _run(self, seconds: int) -> None:
        try:
            self.conn.execute("SELECT pg_sleep(%s)", (seconds,))
        except BaseException as exc:
            self.error = exc
        finally:
            self.finished.set()

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn.cancel()
        self.finished.wait(10)
        self.conn.close()


def find_session(client, node: str, pid: int, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for query in client.get("/api/queries").json()["queries"]:
            if query["node"] == node and query["pid"] == pid and "pg_sleep" in (query["query"] or ""):
                return query
        time.sleep(0.2)
    raise AssertionError(f"session {pid} on {node} not listed")


def test_operator_cancels_a_running_pg_sleep(api_server, make_user, admin):
    operator = make_user("operator")
    sleeper = Sleeper(api_server.stack.coordinator)
    try:
        with api_server.client(operator.token) as client:
            listed = find_session(client, "coordinator", sleeper.pid)
            assert listed["state"] == "active" and listed["duration_seconds"] >= 0
            answer = client.post(f"/api/queries/coordinator/{sleeper.pid}/cancel")
            assert answer.status_code == 200 and answer.json()["signalled"] is True
        assert sleeper.finished.wait(10), "pg_sleep still running after cancel"
        assert isinstance(sleeper.error, psycopg.errors.QueryCanceled)
        assert not sleeper.conn.closed  # cancel keeps the session
    finally:
        sleeper.close()
    entries = admin.get("/api/audit", params={"action": "query_cancel"}).json()["items"]
    assert any(e["actor"] == operator.username and e["target"] == f"coordinator:{sleeper.pid}"
               and e["success"] for e in entries)


def test_admin_terminates_a_session_on_the_standby(api_server, admin):
    sleeper = Sleeper(api_server.stack.standby)
    try:
        find_session(admin, "standby", sleeper.pid)
        answer = admin.post(f"/api/queries/standby/{sleeper.pid}/terminate")
        assert answer.status_code == 200 and answer.json()["signalled"] is True
        assert sleeper.finished.wait(10)
        assert isinstance(sleeper.error, psycopg.OperationalError)
    finally:
        sleeper.close()
    entries = admin.get("/api/audit", params={"action": "query_terminate"}).json()["items"]
    mine = [e for e in entries if e["target"] == f"standby:{sleeper.pid}"]
    assert len(mine) == 1, entries
    assert mine[0]["actor"] == "admin" and mine[0]["success"] is True
    assert mine[0]["client_addr"] == "127.0.0.1"
    assert mine[0]["detail"] == {"node": "standby", "pid": sleeper.pid}


def test_signals_to_unknown_sessions_and_nodes_are_404(admin):
    assert admin.post("/api/queries/coordinator/2147483000/cancel").status_code == 404
    assert admin.post("/api/queries/nosuchnode/123/cancel").status_code == 404


def test_the_uis_own_sessions_are_hidden_unless_asked_for(admin):
    hidden = admin.get("/api/queries", params={"include_idle": True}).json()["queries"]
    assert all(q["application_name"] != "exapg-mgmt" for q in hidden)
    shown = admin.get("/api/queries", params={"include_idle": True, "include_internal": True})
    assert any(q["application_name"] == "exapg-mgmt" for q in shown.json()["queries"])


def test_top_statements_come_from_pg_stat_statements(admin, api_server):
    with connect(api_server.stack.coordinator) as conn:
        conn.execute("SELECT pg_sleep(0.5) AS exapg_top_statement_probe")
    body = admin.get("/api/queries/top", params={"limit": 100}).json()
    assert body["available"] is True
    assert any("exapg_top_statement_probe" in s["query"] for s in body["statements"])
