"""What one collection read from one server, as typed values.

NULLs stay None all the way to the metrics: a value PostgreSQL does not know is left
out of the exposition, never replaced by a made-up number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STAGES = ("sent", "write", "flush", "replay")
TIMED_STAGES = ("write", "flush", "replay")


@dataclass(frozen=True)
class Sender:
    """One row of pg_stat_replication (a WAL sender on this server)."""

    application_name: str
    client_addr: str
    state: str | None
    sync_state: str | None
    positions: dict[str, float | None]  # stage -> LSN in bytes
    lags: dict[str, float | None]  # timed stage -> seconds

    @classmethod
    def parse(cls, row: Mapping[str, Any]) -> Sender:
        return cls(
            application_name=row.get("application_name") or "",
            client_addr=row.get("client_addr") or "",  # NULL for a unix-socket client
            state=row.get("state"),
            sync_state=row.get("sync_state"),
            positions={stage: _float(row.get(stage)) for stage in STAGES},
            lags={stage: _float(row.get(f"{stage}_lag")) for stage in TIMED_STAGES},
        )


@dataclass(frozen=True)
class Slot:
    """One row of pg_replication_slots."""

    slot_name: str
    slot_type: str
    active: bool
    wal_status: str | None
    restart_lsn: float | None
    safe_wal_size: float | None
    xmin_age: float | None

    @classmethod
    def parse(cls, row: Mapping[str, Any]) -> Slot:
        return cls(
            slot_name=row["slot_name"],
            slot_type=row.get("slot_type") or "physical",
            active=bool(row.get("active")),
            wal_status=row.get("wal_status"),
            restart_lsn=_float(row.get("restart")),
            safe_wal_size=_float(row.get("safe_wal_size")),
            xmin_age=_float(row.get("xmin_age")),
        )


@dataclass(frozen=True)
class RoleChange:
    """The newest row of exapg.role_changes: a switchover or failover ExaPG carried out."""

    at: float  # epoch seconds
    kind: str
    from_server: str
    to_server: str
    timeline: int

    @classmethod
    def parse(cls, row: Mapping[str, Any] | None) -> RoleChange | None:
        if not row:
            return None
        return cls(float(row["at"]), str(row["kind"]), str(row["from_server"]),
                   str(row["to_server"]), int(row["timeline"]))


@dataclass(frozen=True)
class ServerSample:
    """One server's state at one scrape."""

    in_recovery: bool
    system_identifier: str
    timeline_id: int | None
    current_lsn: float | None  # primary only: WAL written
    insert_lsn: float | None  # primary only: WAL inserted (ahead of written)
    receive_lsn: float | None  # standby only
    replay_lsn: float | None  # standby only
    last_replay_time: float | None  # epoch seconds of the last replayed commit
    server_time: float  # the server's clock, epoch seconds, at the query
    replay_paused: bool | None
    receiver_status: str | None
    receiver_last_msg_time: float | None
    senders: tuple[Sender, ...] = ()
    slots: tuple[Slot, ...] = ()
    heartbeat_exists: bool = False
    heartbeat_read: bool = False  # the heartbeat table was part of the query
    heartbeat_seq: int | None = None
    role_changes_exists: bool = False
    role_change: RoleChange | None = None  # the newest planned role change recorded
    # (seq, LSN) of a heartbeat this exporter wrote and knows to be committed below LSN
    heartbeat_mark: tuple[int, float] | None = None

    @property
    def role(self) -> str:
        return "standby" if self.in_recovery else "primary"

    @property
    def wal_position(self) -> float | None:
        """Where this server's WAL stands: written (primary) or replayed (standby)."""
        return self.replay_lsn if self.in_recovery else self.current_lsn

    @classmethod
    def parse(cls, row: Mapping[str, Any]) -> ServerSample:
        return cls(
            in_recovery=bool(row["in_recovery"]),
            system_identifier=str(row["system_identifier"]),
            timeline_id=row.get("timeline_id"),
            current_lsn=_float(row.get("current_lsn")),
            insert_lsn=_float(row.get("insert_lsn")),
            receive_lsn=_float(row.get("receive_lsn")),
            replay_lsn=_float(row.get("replay_lsn")),
            last_replay_time=_float(row.get("last_replay_time")),
            server_time=float(row["server_time"]),
            replay_paused=row.get("replay_paused"),
            receiver_status=row.get("receiver_status"),
            receiver_last_msg_time=_float(row.get("receiver_last_msg_time")),
            senders=tuple(Sender.parse(s) for s in row.get("senders") or ()),
            slots=tuple(Slot.parse(s) for s in row.get("slots") or ()),
            heartbeat_exists=bool(row.get("heartbeat_exists")),
            heartbeat_read="heartbeat_seq" in row,
            heartbeat_seq=row.get("heartbeat_seq"),
            role_changes_exists=bool(row.get("role_changes_exists")),
            role_change=RoleChange.parse(row.get("role_change")),
        )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
