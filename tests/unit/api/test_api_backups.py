"""The Backups resource in-process: who may read and start, bad input, one backup at a time,
the audit records of both ends, and one-line answers when backups cannot be reached.

The stack access (our own layer) is faked: it answers a listing and takes a "backup" that
waits for the test. pgBackRest itself is driven for real in tests/api/test_backups.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from exapg.api.access import BackupListing, Progress, Taken, UrlAccess
from exapg.api.app import create_app
from exapg.api.services import audit as audited
from exapg.backup.pgbackrest import BackupSet, BackupType, StanzaInfo
from exapg.backup.points import RestorePoint
from exapg.errors import ExaPGError
from exapg.runtime.backup import Restorable
from tests.unit.api.conftest import SECRET, Api, StoppedStack, unit_env, unit_settings

T0 = 1764770000.0  # 2025-12-03 13:53:20 UTC


def backup_set(label: str, kind: str, started: float) -> BackupSet:
    return BackupSet(label=label, type=kind, started=started, stopped=started + 12, size=30_000_000,
                     repository_size=4_000_000, delta=30_000_000, wal_start="000000010000000000000005",
                     wal_stop="000000010000000000000005", lsn_start="0/5000028", lsn_stop="0/5000138",
                     prior=None, error=False)


FULL = backup_set("20251203-135320F", "full", T0)
INCR = backup_set("20251203-135320F_20251203-140000I", "incr", T0 + 2400)
NEW = backup_set("20251203-135320F_20251203-150000I", "incr", T0 + 6000)


class BackupStack(StoppedStack):
    """A stack access with a repository: two backups of the coordinator, two restore points
    (one from before the first backup), and a backup that runs until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.failure: Exception | None = None
        self.stanza = StanzaInfo("coordinator", 0, "ok", (FULL, INCR), "000000010000000000000003",
                                 "000000010000000000000009")
        self.taken: list[BackupType] = []
        self.not_ready: Exception | None = None

    def backups(self) -> BackupListing:
        restorable = Restorable(FULL.stopped, FULL.lsn_stop, T0 + 3000, self.stanza.wal_min, self.stanza.wal_max)
        points = [RestorePoint("before-backups", T0 - 60, "0/4000090", False),
                  RestorePoint("before-migration-42", T0 + 2000, "0/6000090", False)]
        return BackupListing("/var/lib/exapg/backup", "posix", [(self.stanza, restorable)], points)

    def check_backup(self) -> None:
        if self.not_ready is not None:
            raise self.not_ready

    def take_backup(self, kind: BackupType, progress: Progress) -> Taken:
        self.taken.append(kind)
        progress(f"coordinator: {kind} backup")
        assert self.release.wait(10), "the test never released the backup"
        if self.failure is not None:
            raise self.failure
        return [("coordinator", NEW)], []


@pytest.fixture
def stack() -> BackupStack:
    return BackupStack()


@pytest.fixture
def written(monkeypatch) -> list[dict[str, Any]]:
    """The audit records, with the coordinator's connections faked (our own pool layer)."""
    rows: list[dict[str, Any]] = []
    monkeypatch.setattr(audited.audit, "record", lambda conn, **row: rows.append(row))
    return rows


@contextmanager
def connection(node: str = "coordinator", timeout: float = 5.0) -> Iterator[object]:
    yield object()


@pytest.fixture
def backup_api(tmp_path: Path, stack: BackupStack, written, monkeypatch) -> Iterator[Api]:
    app = create_app(unit_settings(tmp_path / "state"), access=stack, environ=unit_env(tmp_path))
    monkeypatch.setattr(app.state.ctx.pools, "connection", connection)
    client = TestClient(app)
    yield Api(app, client)
    stack.release.set()
    client.close()
    app.state.ctx.password_checks.close()


def wait_job(api: Api, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = api.client.get("/api/backups/job", headers=headers).json()
        if job["state"] != "running":
            return job  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError("the backup job did not end")


def test_a_viewer_lists_backups_and_restore_points_newest_first(backup_api):
    answer = backup_api.client.get("/api/backups", headers=backup_api.session("viewer"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["repository"] == "/var/lib/exapg/backup" and body["job"] is None
    (stanza,) = body["stanzas"]
    assert [b["label"] for b in stanza["backups"]] == [INCR.label, FULL.label]
    newest = stanza["backups"][0]
    assert (newest["type"], newest["duration_seconds"], newest["size_bytes"], newest["repository_bytes"]) == (
        "incr", 12.0, 30_000_000, 4_000_000)
    assert newest["wal_start"] == "000000010000000000000005" and newest["lsn_stop"] == "0/5000138"
    assert stanza["restorable"]["earliest_time"].startswith("2025-12-03T13:53:32")
    assert stanza["restorable"]["wal_max"] == "000000010000000000000009"
    assert [(p["name"], p["restorable"]) for p in body["restore_points"]] == [
        ("before-migration-42", True), ("before-backups", False)]


def test_only_an_admin_may_start_a_backup(backup_api, stack, written):
    for role in ("viewer", "operator"):
        answer = backup_api.client.post("/api/backups", json={"type": "full"}, headers=backup_api.session(role))
        assert answer.status_code == 403, answer.text
        assert answer.json()["detail"] == f"this needs the admin role (you are {role})"
    assert stack.taken == [] and written == []


@pytest.mark.parametrize("body, expected", [
    ({"type": "weekly"}, "'full', 'diff' or 'incr'"),
    ({"type": "full", "stanza": "coordinator"}, "Extra inputs are not permitted"),
])
def test_bad_input_is_422_and_no_attempt(backup_api, stack, written, body, expected):
    answer = backup_api.client.post("/api/backups", json=body, headers=backup_api.session("admin"))
    assert answer.status_code == 422
    assert expected in answer.text
    assert stack.taken == [] and written == []


def test_an_admin_starts_one_backup_at_a_time_and_both_ends_are_audited(backup_api, stack, written):
    admin = backup_api.session("admin")
    started = backup_api.client.post("/api/backups", json={"type": "diff"}, headers=admin)
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["type"], job["state"]) == ("diff", "running")

    second = backup_api.client.post("/api/backups", json={"type": "full"}, headers=admin)
    assert second.status_code == 409
    assert second.json()["detail"].startswith(f"a backup is already running (job {job['id']}, diff")
    running = backup_api.client.get("/api/backups/job", headers=backup_api.session("viewer")).json()
    assert running["step"] == "coordinator: diff backup"

    stack.release.set()
    done = wait_job(backup_api, admin)
    assert done["state"] == "succeeded" and done["error"] is None
    assert done["backups"] == [{"stanza": "coordinator", "label": NEW.label, "type": "incr"}]
    assert stack.taken == ["diff"]
    assert backup_api.client.get("/api/backups", headers=admin).json()["job"]["id"] == job["id"]
    assert [(r["action"], r["success"], r["target"], r["detail"]) for r in written] == [
        ("backup_start", True, None, {"type": "diff", "job": job["id"]}),
        ("backup_start", False, None, {"type": "full", "reason": "conflict",
                                       "error": second.json()["detail"]}),
        ("backup", True, job["id"], {"type": "diff", "backups": {"coordinator": NEW.label}}),
    ]
    assert {r["actor"] for r in written} == {"admin1"}


def test_a_failed_backup_ends_the_job_with_its_error_and_is_audited(backup_api, stack, written):
    stack.failure = ExaPGError("pgbackrest backup (coordinator) failed: unable to acquire lock on file "
                               "'/tmp/coordinator-backup.lock': Resource temporarily unavailable")
    stack.release.set()
    admin = backup_api.session("admin")
    assert backup_api.client.post("/api/backups", json={"type": "incr"}, headers=admin).status_code == 202
    done = wait_job(backup_api, admin)
    assert done["state"] == "failed" and done["error"] == str(stack.failure)
    last = written[-1]
    assert (last["action"], last["success"]) == ("backup", False)
    assert last["detail"] == {"type": "incr", "reason": "error", "error": str(stack.failure)}
    # the next request may start again
    stack.failure = None
    assert backup_api.client.post("/api/backups", json={}, headers=admin).json()["type"] == "incr"


def test_a_stack_that_cannot_back_up_is_refused_at_once_and_audited(backup_api, stack, written):
    stack.not_ready = ExaPGError("coordinator is not running: start the stack with 'exapg up' first")
    answer = backup_api.client.post("/api/backups", json={"type": "full"}, headers=backup_api.session("admin"))
    assert answer.status_code == 503
    assert answer.json()["detail"] == ("cannot back up: coordinator is not running: start the stack with "
                                       "'exapg up' first")
    assert stack.taken == []
    assert [(r["action"], r["success"], r["detail"]["reason"]) for r in written] == [
        ("backup_start", False, "unavailable")]
    assert backup_api.client.get("/api/backups/job", headers=backup_api.session("admin")).status_code == 404


def test_an_unreachable_repository_is_503_with_one_line(api):
    answer = api.client.get("/api/backups", headers=api.session("viewer"))
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert detail.startswith("backups unavailable: pgbackrest info (coordinator) failed: ") and "\n" not in detail


def test_a_stanza_missing_from_the_repository_is_503(backup_api, stack):
    stack.stanza = replace(stack.stanza, status_code=1, status="missing stanza path", backups=())
    answer = backup_api.client.get("/api/backups", headers=backup_api.session("viewer"))
    assert answer.status_code == 503
    assert answer.json()["detail"] == (
        "backups unavailable: the repository /var/lib/exapg/backup has no stanza coordinator "
        "(missing stanza path): check EXAPG_BACKUP_REPO, then 'exapg up' creates it")


def test_docker_mode_answers_501_with_one_line(tmp_path, written, monkeypatch):
    settings = unit_settings(tmp_path / "state")
    keyed = settings.model_copy(update={"api_secret_key": SecretStr(SECRET)})
    app = create_app(settings, access=UrlAccess(keyed, "postgresql://u@127.0.0.1:9/db"), environ=unit_env(tmp_path))
    monkeypatch.setattr(app.state.ctx.pools, "connection", connection)
    api = Api(app, TestClient(app))
    try:
        for method, body in (("GET", None), ("POST", {"type": "full"})):
            answer = api.client.request(method, "/api/backups", json=body, headers=api.session("admin"))
            assert answer.status_code == 501, answer.text
            assert answer.json()["detail"].startswith("backups are taken by the local runtime only")
        assert [(r["action"], r["success"], r["detail"]["reason"]) for r in written] == [
            ("backup_start", False, "not_supported")]
    finally:
        api.client.close()
        app.state.ctx.password_checks.close()
