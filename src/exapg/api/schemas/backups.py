from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from exapg.api.schemas.common import Body


class BackupCreate(Body):
    type: Literal["full", "diff", "incr"] = Field(
        "incr", description="full, diff (since the last full) or incr (since the last backup); "
                            "the first backup of a stanza is always full")


class BackupPublic(BaseModel):
    label: str
    type: str
    started_at: datetime
    stopped_at: datetime
    duration_seconds: float
    size_bytes: int
    repository_bytes: int
    delta_bytes: int
    wal_start: str
    wal_stop: str
    lsn_start: str
    lsn_stop: str
    prior: str | None
    error: bool


class RestorablePublic(BaseModel):
    """From the end of the oldest backup to about the newest archived WAL."""

    earliest_time: datetime | None
    earliest_lsn: str | None
    latest_time: datetime | None
    wal_min: str | None
    wal_max: str | None


class StanzaPublic(BaseModel):
    stanza: str
    status: str
    backups: list[BackupPublic] = Field(description="newest first")
    restorable: RestorablePublic


class RestorePointPublic(BaseModel):
    name: str
    created_at: datetime
    lsn: str = Field(description="the coordinator's")
    cluster: bool = Field(description="made by Citus on every node at one instant")
    restorable: bool = Field(description="a backup of the coordinator kept ended before it")


class TakenPublic(BaseModel):
    stanza: str
    label: str
    type: str


class BackupJobPublic(BaseModel):
    id: str
    type: str
    state: Literal["running", "succeeded", "failed"]
    started_at: datetime
    finished_at: datetime | None
    step: str | None = Field(description="what the running backup does now")
    error: str | None
    backups: list[TakenPublic]
    notes: list[str]


class BackupsPublic(BaseModel):
    repository: str
    repository_type: str
    stanzas: list[StanzaPublic]
    restore_points: list[RestorePointPublic] = Field(description="newest first")
    job: BackupJobPublic | None = Field(description="the backup started from this API process last")
