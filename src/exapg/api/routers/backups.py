from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status

from exapg.api.core.errors import NotFoundError
from exapg.api.deps import Admin, Audit, Ctx, Viewer
from exapg.api.schemas.backups import (
    BackupCreate,
    BackupJobPublic,
    BackupPublic,
    BackupsPublic,
    RestorablePublic,
    RestorePointPublic,
    StanzaPublic,
    TakenPublic,
)
from exapg.api.services import backups
from exapg.api.services.backups import Job
from exapg.backup.pgbackrest import BackupSet

router = APIRouter(prefix="/api/backups", tags=["backups"])


def _time(moment: float | None) -> datetime | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC)


def _backup(b: BackupSet) -> BackupPublic:
    return BackupPublic(
        label=b.label, type=b.type, started_at=datetime.fromtimestamp(b.started, UTC),
        stopped_at=datetime.fromtimestamp(b.stopped, UTC), duration_seconds=b.duration, size_bytes=b.size,
        repository_bytes=b.repository_size, delta_bytes=b.delta, wal_start=b.wal_start, wal_stop=b.wal_stop,
        lsn_start=b.lsn_start, lsn_stop=b.lsn_stop, prior=b.prior, error=b.error)


def _job(job: Job) -> BackupJobPublic:
    return BackupJobPublic(
        id=job.id, type=job.type, state=job.state,  # type: ignore[arg-type]
        started_at=datetime.fromtimestamp(job.started_at, UTC), finished_at=_time(job.finished_at),
        step=job.step, error=job.error, notes=list(job.notes),
        backups=[TakenPublic(stanza=s, label=label, type=t) for s, label, t in job.backups])


@router.get("")
def list_backups(_: Viewer, ctx: Ctx) -> BackupsPublic:
    """Every stanza's backups and what they restore to, the restore points (viewer: no secret
    in any of it), and the last backup started here."""
    found = backups.listing(ctx.access)
    earliest = next((r.earliest_time for i, r in found.stanzas if i.name == "coordinator"), None)
    job = ctx.backup_jobs.current()
    return BackupsPublic(
        repository=found.repository, repository_type=found.repository_type,
        stanzas=[StanzaPublic(
            stanza=info.name, status=info.status, backups=[_backup(b) for b in reversed(info.backups)],
            restorable=RestorablePublic(
                earliest_time=_time(r.earliest_time), earliest_lsn=r.earliest_lsn,
                latest_time=_time(r.latest_time), wal_min=r.wal_min, wal_max=r.wal_max),
        ) for info, r in found.stanzas],
        restore_points=[RestorePointPublic(
            name=p.name, created_at=datetime.fromtimestamp(p.created, UTC), lsn=p.lsn, cluster=p.cluster,
            restorable=backups.point_restorable(p, earliest),
        ) for p in reversed(found.restore_points)],
        job=_job(job) if job else None,
    )


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses={409: {}, 501: {}, 503: {}})
def start_backup(body: BackupCreate, _: Admin, ctx: Ctx, audit: Audit) -> BackupJobPublic:
    """Start a backup of every primary (admin only); it runs on after the answer: read
    GET /api/backups/job until its state is no longer `running`."""
    return _job(ctx.backup_jobs.start(ctx.access, body.type, audit))


@router.get("/job", responses={404: {}})
def backup_job(_: Viewer, ctx: Ctx) -> BackupJobPublic:
    """The backup started from this API process last, running or ended."""
    job = ctx.backup_jobs.current()
    if job is None:
        raise NotFoundError("no backup was started from the management API since it started")
    return _job(job)
