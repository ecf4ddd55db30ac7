"""Backups from the UI: the listing (what `exapg backup list` shows, plus restore points)
and one backup at a time, run in the background.

A backup takes seconds to hours, longer than an HTTP request should wait (and than nginx
waits in Docker mode), so POST starts it in a thread and answers at once; the job's state is
read back until it ends. One job per API process: a second request while one runs is a
conflict. A backup started elsewhere at the same moment (`exapg backup`) fails on
pgBackRest's own lock, and the job says so.

Two audit records: `backup_start` when the request is answered (refused: not ready, already
running), and `backup` when the backup ends, with its labels or its error.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field, replace

from exapg.api.access import BackupListing, StackAccess, Taken
from exapg.api.core.errors import ApiError, ConflictError, UnavailableError
from exapg.api.services.audit import Auditor
from exapg.backup.pgbackrest import BackupType
from exapg.backup.points import RestorePoint
from exapg.errors import ExaPGError, first_line

log = logging.getLogger(__name__)


def listing(access: StackAccess) -> BackupListing:
    """The repository's backups; 503 with one line when pgBackRest or the repository cannot
    answer, or a stanza is missing from it (moved or lost)."""
    try:
        found = access.backups()
    except ApiError:
        raise
    except ExaPGError as exc:
        raise UnavailableError(f"backups unavailable: {first_line(exc)}") from None
    for info, _ in found.stanzas:
        if not info.exists:
            raise UnavailableError(
                f"backups unavailable: the repository {found.repository} has no stanza {info.name} "
                f"({info.status}): check EXAPG_BACKUP_REPO, then 'exapg up' creates it")
    return found


def point_restorable(point: RestorePoint, earliest: float | None) -> bool:
    """A point can be restored to when a backup of the coordinator (the oldest one kept, as
    `exapg backup list` says) ended before it."""
    return earliest is not None and point.created >= earliest


@dataclass(frozen=True)
class Job:
    id: str
    type: BackupType
    state: str  # running, succeeded, failed
    started_at: float
    finished_at: float | None = None
    step: str | None = None  # the last progress line
    error: str | None = None
    backups: tuple[tuple[str, str, str], ...] = ()  # (stanza, label, type) of each new backup
    notes: tuple[str, ...] = ()


@dataclass
class BackupJobs:
    """The backup of this API process: at most one runs."""

    _job: Job | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> Job | None:
        with self._lock:
            return self._job

    def start(self, access: StackAccess, kind: BackupType, auditor: Auditor) -> Job:
        """Reserve the job and audit that (`backup_start`), then run the backup in a thread:
        its own record comes after the start's. A refusal is audited as a failed start."""
        job: Job | None = None
        try:
            with auditor.action("backup_start", target=None, detail={"type": kind}) as outcome:
                job = self._reserve(access, kind)
                outcome.detail["job"] = job.id
        except BaseException:
            if job is not None:  # reserved, but its start could not be recorded: never run
                self._update(job.id, state="failed", finished_at=time.time(), error="not started")
            raise
        threading.Thread(target=self._run, args=(access, job, auditor), name=f"backup-{job.id}",
                         daemon=True).start()
        return job

    def _reserve(self, access: StackAccess, kind: BackupType) -> Job:
        """Check what would fail at once (Docker mode 501, a stopped node or pgBackRest missing
        503; outside the lock, as it asks the nodes); a backup running is a conflict (409)."""
        self._refuse_if_running()
        try:
            access.check_backup()
        except ApiError:
            raise
        except ExaPGError as exc:
            raise UnavailableError(f"cannot back up: {first_line(exc)}") from None
        with self._lock:
            self._refuse_if_running()
            self._job = Job(secrets.token_hex(6), kind, "running", time.time())
            return self._job

    def _refuse_if_running(self) -> None:
        job = self._job
        if job is not None and job.state == "running":
            raise ConflictError(f"a backup is already running (job {job.id}, {job.type}, "
                                f"started {_ago(job.started_at)}): wait for it to end")

    def _update(self, job_id: str, **change: object) -> None:
        with self._lock:
            if self._job is not None and self._job.id == job_id:
                self._job = replace(self._job, **change)  # type: ignore[arg-type]

    def _run(self, access: StackAccess, job: Job, auditor: Auditor) -> None:
        done: Taken | None = None
        try:
            with auditor.action("backup", target=job.id, detail={"type": job.type}) as outcome:
                done = access.take_backup(job.type, lambda line: self._update(job.id, step=line))
                outcome.detail["backups"] = {stanza: b.label for stanza, b in done[0]}
        except Exception as exc:  # the thread's end: the job carries the error
            if done is None:
                log.warning("backup %s failed: %s", job.id, first_line(exc))
                self._update(job.id, state="failed", finished_at=time.time(), error=first_line(exc))
                return
            log.warning("backup %s done, not audited: %s", job.id, first_line(exc))
        taken, notes = done
        self._update(job.id, state="succeeded", finished_at=time.time(), step=None, notes=tuple(notes),
                     backups=tuple((stanza, b.label, b.type) for stanza, b in taken))


def _ago(moment: float) -> str:
    return f"{max(0, int(time.time() - moment))}s ago"
