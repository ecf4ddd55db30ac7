"""Derived values: rates, lags, consistency and the health score.

Pure functions of the samples of one scrape (and, for rates, of earlier ones), so
every rule here is tested without a clock or a database. Where the inputs do not
determine a value the functions return None and the series is left out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from exapg.exporter.samples import STAGES, TIMED_STAGES, Sender, ServerSample, Slot

MiB = 1024**2
GiB = 1024**3
SYNC_STATES = {"async": 0, "potential": 1, "sync": 2, "quorum": 3}
SLOT_WAL_STATES = ("reserved", "extended", "unreserved", "lost")
RISKY_SLOT_STATES = ("unreserved", "lost")

# Health score: 100 minus these deductions (see docs/exporter.md), floored at 0.
DEDUCTIONS = {
    "primary_down": 50.0,  # no reachable primary to replicate from
    "server_down": 50.0,  # this standby does not answer
    "not_replica": 50.0,  # this server answers but is not in recovery
    "not_streaming": 30.0,  # in recovery, but its WAL receiver is not streaming
    "lag": 30.0,  # the most: tiers below
    "replay_paused": 20.0,
    "slot_at_risk": 20.0,  # a slot on the primary lost or about to lose its WAL
    "slot_inactive": 10.0,  # a slot on the primary retains WAL for nobody
    "inconsistent": 30.0,  # pg_data_consistency_check is 0
}
LAG_SECONDS_TIERS = ((10.0, 0.0), (60.0, 10.0), (300.0, 20.0))  # (below, deduction)
LAG_BYTES_TIERS = ((16 * MiB, 0.0), (256 * MiB, 10.0), (1 * GiB, 20.0))


class RateTracker:
    """Bytes per second of a position, over the interval since the newest sample at
    least `min_interval` old: two scrapes a few milliseconds apart (two Prometheus
    servers) would otherwise give a rate made of noise."""

    def __init__(self, min_interval: float = 1.0, keep: float = 300.0) -> None:
        self.min_interval, self.keep = min_interval, keep
        self._samples: deque[tuple[float, float]] = deque()

    def observe(self, now: float, position: float) -> float | None:
        if self._samples and position < self._samples[-1][1]:
            self._samples.clear()  # a different server (restored, replaced): start again
        while self._samples and now - self._samples[0][0] > self.keep:
            self._samples.popleft()
        base = None
        for when, where in reversed(self._samples):
            if now - when >= self.min_interval:
                base = (when, where)
                break
        self._samples.append((now, position))
        if base is None:
            return None
        return (position - base[1]) / (now - base[0])


def choose_primary(samples: list[tuple[str, ServerSample | None]]) -> ServerSample | None:
    """The primary lags are measured against: the configured primary if it is one,
    else any reachable server not in recovery (a promoted standby)."""
    live = [(role, s) for role, s in samples if s is not None and not s.in_recovery]
    for role, sample in live:
        if role == "primary":
            return sample
    return live[0][1] if live else None


def standby_lag_bytes(standby: ServerSample, primary: ServerSample | None) -> float | None:
    """WAL written on the primary and not yet replayed here, at this scrape."""
    if not standby.in_recovery or primary is None or primary.current_lsn is None:
        return None
    if standby.replay_lsn is None:
        return None
    return max(0.0, primary.current_lsn - standby.replay_lsn)


def standby_lag_seconds(standby: ServerSample, primary: ServerSample | None) -> float | None:
    """0 when everything received is replayed (an idle pair has no lag); else the age of
    the last replayed commit. A disconnected standby the primary has moved away from
    is behind even if it replayed all it received."""
    if not standby.in_recovery or standby.replay_lsn is None:
        return None
    replay = standby.replay_lsn
    behind_receive = standby.receive_lsn is not None and replay < standby.receive_lsn
    behind_primary = (
        primary is not None and primary.current_lsn is not None and replay < primary.current_lsn
    )
    streaming = standby.receiver_status == "streaming"
    if not behind_receive and (streaming or not behind_primary):
        return 0.0
    if standby.last_replay_time is None:
        return None  # nothing replayed since start: unknown, not zero
    return max(0.0, standby.server_time - standby.last_replay_time)


def sender_lag_bytes(sender: Sender, current: float) -> dict[str, float]:
    """Per stage, WAL bytes this sender's standby has not yet sent/written/flushed/replayed."""
    return {
        stage: max(0.0, current - pos)
        for stage in STAGES
        if (pos := sender.positions.get(stage)) is not None
    }


def sender_lag_seconds(sender: Sender, current: float) -> dict[str, float]:
    """pg_stat_replication's lag columns. PostgreSQL sets them to NULL once a standby has
    been caught up for a while; that is 0 when the stage has reached the primary's
    position, and unknown (left out) otherwise."""
    lags: dict[str, float] = {}
    for stage in TIMED_STAGES:
        value = sender.lags.get(stage)
        position = sender.positions.get(stage)
        if value is not None:
            lags[stage] = value
        elif position is not None and position >= current:
            lags[stage] = 0.0
    return lags


def primary_lag(senders: tuple[Sender, ...], current: float) -> tuple[float | None, float | None]:
    """The largest replay lag of a primary's standbys: (bytes, seconds)."""
    byte_lags = [sender_lag_bytes(s, current).get("replay") for s in senders]
    second_lags = [sender_lag_seconds(s, current).get("replay") for s in senders]
    return _max(byte_lags), _max(second_lags)


def consistent(standby: ServerSample, primary: ServerSample) -> bool:
    """Same cluster (system identifier), same timeline, and the primary's last known
    heartbeat visible once the standby has replayed past the LSN where it was
    committed. A heartbeat not yet replayed is lag, not inconsistency."""
    if standby.system_identifier != primary.system_identifier:
        return False
    if standby.timeline_id != primary.timeline_id:
        return False
    mark = primary.heartbeat_mark
    if mark is None or not standby.heartbeat_read or standby.replay_lsn is None:
        return True
    seq, committed_below = mark
    if standby.replay_lsn < committed_below:
        return True
    return standby.heartbeat_seq is not None and standby.heartbeat_seq >= seq


@dataclass(frozen=True)
class HealthInputs:
    standby: ServerSample | None  # None: the server did not answer
    primary: ServerSample | None
    lag_seconds: float | None
    lag_bytes: float | None
    consistent: bool | None


def deductions(inputs: HealthInputs) -> dict[str, float]:
    """Every reason with its deduction (0 when it does not apply), for stable series."""
    found = dict.fromkeys(DEDUCTIONS, 0.0)
    if inputs.primary is None:
        found["primary_down"] = DEDUCTIONS["primary_down"]
    else:
        found.update(_slot_deductions(inputs.primary.slots))
    standby = inputs.standby
    if standby is None:
        found["server_down"] = DEDUCTIONS["server_down"]
        return found
    if not standby.in_recovery:
        found["not_replica"] = DEDUCTIONS["not_replica"]
        return found
    if standby.receiver_status != "streaming":
        found["not_streaming"] = DEDUCTIONS["not_streaming"]
    if standby.replay_paused:
        found["replay_paused"] = DEDUCTIONS["replay_paused"]
    found["lag"] = lag_deduction(inputs.lag_seconds, inputs.lag_bytes)
    if inputs.consistent is False:
        found["inconsistent"] = DEDUCTIONS["inconsistent"]
    return found


def score(found: dict[str, float]) -> float:
    return max(0.0, 100.0 - sum(found.values()))


def lag_deduction(seconds: float | None, size: float | None) -> float:
    """The worse of the time tier and the size tier; an unknown lag deducts nothing."""
    return max(_tier(seconds, LAG_SECONDS_TIERS), _tier(size, LAG_BYTES_TIERS))


def _tier(value: float | None, tiers: tuple[tuple[float, float], ...]) -> float:
    if value is None:
        return 0.0
    for below, deduction in tiers:
        if value < below:
            return deduction
    return DEDUCTIONS["lag"]


def _slot_deductions(slots: tuple[Slot, ...]) -> dict[str, float]:
    found = {}
    if any(s.wal_status in RISKY_SLOT_STATES for s in slots):
        found["slot_at_risk"] = DEDUCTIONS["slot_at_risk"]
    if any(not s.active for s in slots):
        found["slot_inactive"] = DEDUCTIONS["slot_inactive"]
    return found


def _max(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None
