"""The Backups resource against the session's real HA stack: pgBackRest runs for real.

A backup made with the CLI shows in the API; a backup started through the API shows in
`pgbackrest info` and `exapg backup list --json`, and in the audit log; a viewer's or an
operator's request makes nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from exapg.backup.pgbackrest import binary
from exapg.runtime import archiving
from tests.api.fixtures import ApiServer, unique_name

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(binary() is None, reason="pgBackRest is not installed (apt-get install pgbackrest)"),
]
BACKUP_WAIT = 300.0


def cli_labels(api_server: ApiServer) -> list[str]:
    """The coordinator's backups as `exapg backup list --json` lists them."""
    result = api_server.stack.cli("backup", "list", "--json")  # type: ignore[attr-defined]
    assert result.returncode == 0, result.stderr
    stanzas = json.loads(result.stdout)["stanzas"]
    return [b["label"] for s in stanzas if s["stanza"] == "coordinator" for b in s["backups"]]


def pgbackrest_labels(api_server: ApiServer) -> list[str]:
    """The same, from `pgbackrest info` itself."""
    stack = api_server.stack.runtime.stack  # type: ignore[attr-defined]
    return [b.label for b in archiving.driver(stack).info("coordinator").backups]


def wait_job(client: httpx.Client) -> dict[str, Any]:
    deadline = time.monotonic() + BACKUP_WAIT
    while time.monotonic() < deadline:
        job = client.get("/api/backups/job")
        assert job.status_code == 200, job.text
        if job.json()["state"] != "running":
            return job.json()  # type: ignore[no-any-return]
        time.sleep(0.5)
    pytest.fail(f"the backup did not end within {BACKUP_WAIT:.0f}s")


def test_a_backup_and_a_restore_point_made_with_the_cli_are_listed(api_server, make_user):
    stack = api_server.stack
    made = stack.cli("backup", "--type", "full", timeout=BACKUP_WAIT)
    assert made.returncode == 0, made.stderr
    point = unique_name("before-change-")
    assert stack.cli("backup", "restore-point", point).returncode == 0
    newest = cli_labels(api_server)[-1]

    viewer = make_user("viewer")
    with api_server.client(viewer.token) as client:
        answer = client.get("/api/backups")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["repository"] == stack.settings.backup_repo_path
    (coordinator,) = [s for s in body["stanzas"] if s["stanza"] == "coordinator"]
    listed = coordinator["backups"][0]  # newest first
    assert listed["label"] == newest and listed["type"] == "full"
    assert listed["size_bytes"] > 0 and listed["repository_bytes"] > 0 and listed["duration_seconds"] >= 0
    assert listed["wal_start"] and listed["lsn_stop"]
    assert coordinator["restorable"]["earliest_time"] is not None
    first = body["restore_points"][0]
    assert (first["name"], first["cluster"], first["restorable"]) == (point, False, True)
    assert "/" in first["lsn"]
    assert "password" not in answer.text.lower() and "secret" not in answer.text.lower()


def test_viewer_and_operator_cannot_start_a_backup(api_server, make_user):
    before = pgbackrest_labels(api_server)
    for role in ("viewer", "operator"):
        user = make_user(role)
        with api_server.client(user.token) as client:
            answer = client.post("/api/backups", json={"type": "full"})
            assert answer.status_code == 403, answer.text
            assert client.get("/api/audit").status_code == 403
    time.sleep(1)  # a backup started anyway would be under way by now
    assert pgbackrest_labels(api_server) == before


def test_an_admin_backup_is_made_listed_and_audited(api_server, admin):
    assert admin.post("/api/backups", json={"type": "weekly"}).status_code == 422
    started = admin.post("/api/backups", json={"type": "full"})
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["type"], job["state"]) == ("full", "running")
    again = admin.post("/api/backups", json={"type": "incr"})
    assert again.status_code == 409 and "already running" in again.json()["detail"]

    done = wait_job(admin)
    assert done["state"] == "succeeded", done
    (taken,) = [b for b in done["backups"] if b["stanza"] == "coordinator"]
    assert taken["type"] == "full"
    assert taken["label"] in pgbackrest_labels(api_server)
    assert taken["label"] in cli_labels(api_server)
    listed = admin.get("/api/backups").json()
    assert listed["stanzas"][0]["backups"][0]["label"] == taken["label"]
    assert listed["job"]["id"] == job["id"]

    entries = admin.get("/api/audit", params={"actor": "admin", "limit": 50}).json()["items"]
    ended = [e for e in entries if e["action"] == "backup" and e["target"] == job["id"]]
    assert [(e["success"], e["detail"]["backups"]["coordinator"]) for e in ended] == [(True, taken["label"])]
    starts = [e for e in entries if e["action"] == "backup_start"]
    assert any(e["success"] and e["detail"]["job"] == job["id"] for e in starts)
    assert any(not e["success"] and e["detail"]["reason"] == "conflict" for e in starts)


def test_a_repository_that_is_gone_answers_503_with_one_line(own_api):
    """The repository directory moved away (a lost disk, an unmounted share): the listing
    says so in one line instead of failing; put back, it lists again."""
    repository = Path(own_api.stack.settings.backup_repo_path)  # type: ignore[attr-defined]
    moved = repository.with_name(repository.name + ".away")
    with own_api.client(own_api.admin_session()) as admin:
        assert admin.get("/api/backups").status_code == 200
        repository.rename(moved)
        try:
            answer = admin.get("/api/backups")
        finally:
            moved.rename(repository)
        assert answer.status_code == 503, answer.text
        detail = answer.json()["detail"]
        assert detail.startswith("backups unavailable: ") and "\n" not in detail
        assert "coordinator" in detail
        assert admin.get("/api/backups").status_code == 200
