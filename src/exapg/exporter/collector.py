"""The Prometheus collector: reads every server at scrape time, within a time budget.

All servers are read in parallel; whatever has not answered when the budget is spent
is reported down (pg_up 0, no other series) so /metrics always answers in time. After
the scrape a heartbeat is queued on the primary, so the standbys read in this scrape
never race with it and the next scrape can check that they replayed it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exapg.exporter import analysis
from exapg.exporter.checksum import ChecksumVerifier
from exapg.exporter.environment import ExporterConfig
from exapg.exporter.metrics import Exposition
from exapg.exporter.samples import RoleChange, Sender, ServerSample
from exapg.exporter.target import Outcome, Target

MiB = 1024**2


@dataclass(frozen=True)
class ScrapeSummary:
    """What /health reports about the last scrape."""

    finished_at: float  # unix time
    duration: float
    servers: list[dict[str, object]]


class ReplicationCollector(Collector):
    def __init__(
        self, config: ExporterConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.clock = clock
        self.targets = [Target(address, config, clock) for address in config.servers]
        self._rates = {t.server: analysis.RateTracker() for t in self.targets}
        self._rate_lock = threading.Lock()
        self.last: ScrapeSummary | None = None
        self.checksums: ChecksumVerifier | None = None
        if config.checksum_tables:
            self.checksums = ChecksumVerifier(config, config.checksum_interval)
            self.checksums.start()

    def describe(self) -> list[Metric]:
        return []  # registering must not scrape the databases

    def collect(self) -> Iterator[Metric]:
        start = self.clock()
        outcomes = self._gather(start + self.config.scrape_timeout)
        out = Exposition()
        primary = analysis.choose_primary([(o.target.address.role, o.sample) for o in outcomes])
        for outcome in outcomes:
            self._server(out, outcome, primary)
        for outcome in outcomes:
            if self._is_scored_standby(outcome, primary):
                self._pair(out, outcome, primary)
        duration = self.clock() - start
        out.add("pg_replication_exporter_scrape_duration_seconds", {}, duration)
        self._remember(outcomes, duration)
        self._queue_heartbeat(outcomes, primary)
        yield from out.families()

    def close(self) -> None:
        if self.checksums is not None:
            self.checksums.stop()
        for target in self.targets:
            target.close()

    # -- collection ---------------------------------------------------------------------
    def _gather(self, deadline: float) -> list[Outcome]:
        futures = [(target, target.begin()) for target in self.targets]  # all start at once
        return [target.finish(future, deadline) for target, future in futures]

    def _queue_heartbeat(self, outcomes: list[Outcome], primary: ServerSample | None) -> None:
        for outcome in outcomes:
            if primary is not None and outcome.sample is primary:
                outcome.target.write_heartbeat()

    def _remember(self, outcomes: list[Outcome], duration: float) -> None:
        servers: list[dict[str, object]] = [
            {"server": o.target.server, "instance": o.target.instance,
             "role": o.sample.role if o.sample else None,
             "timeline": o.sample.timeline_id if o.sample else None,
             "up": o.sample is not None, "error": o.error}
            for o in outcomes
        ]
        self.last = ScrapeSummary(time.time(), duration, servers)

    # -- per server ---------------------------------------------------------------------
    def _server(self, out: Exposition, outcome: Outcome, primary: ServerSample | None) -> None:
        target, sample = outcome.target, outcome.sample
        labels = {"instance": target.instance, "server": target.server}
        own = {"server": target.server}
        out.add("pg_up", labels, sample is not None)
        out.add("pg_replication_exporter_collector_success", own, sample is not None)
        out.add("pg_replication_exporter_errors", own, target.errors_total)
        if sample is None:
            return
        self._position(out, labels, target, sample)
        self._senders(out, labels, sample)
        self._slots(out, labels, sample)
        self._role_change(out, labels, sample.role_change)
        if sample.in_recovery:
            self._standby(out, labels, sample, primary)
        elif sample.current_lsn is not None:
            self._primary(out, labels, sample.senders, sample.current_lsn)

    def _position(self, out: Exposition, labels: dict, target: Target, s: ServerSample) -> None:
        out.add("pg_replication_is_replica", labels, s.in_recovery)
        out.add("pg_timeline_id", labels, s.timeline_id)
        out.add("pg_wal_position_bytes", labels, s.wal_position)
        if s.wal_position is not None:
            with self._rate_lock:  # two concurrent scrapes share one tracker
                rate = self._rates[target.server].observe(self.clock(), s.wal_position)
            out.add("pg_wal_generation_rate", labels, rate)

    def _senders(self, out: Exposition, labels: dict, s: ServerSample) -> None:
        out.add("pg_wal_senders", labels, len(s.senders))
        out.add("pg_wal_receivers", labels, s.receiver_status is not None)
        out.add("pg_replication_connections", labels,
                sum(1 for x in s.senders if x.state == "streaming"))
        for sender in s.senders:
            code = analysis.SYNC_STATES.get(sender.sync_state or "")
            out.add("pg_replication_sync_state",
                    {**_sender_labels(labels, sender), "sync_state": sender.sync_state or ""}, code)

    def _slots(self, out: Exposition, labels: dict, s: ServerSample) -> None:
        active = sum(1 for slot in s.slots if slot.active)
        out.add("pg_replication_slots_total", labels, len(s.slots))
        out.add("pg_replication_slots_active", labels, active)
        out.add("pg_replication_slots_inactive", labels, len(s.slots) - active)
        position = s.wal_position
        for slot in s.slots:
            slot_labels = {**labels, "slot_name": slot.slot_name}
            if position is not None and slot.restart_lsn is not None:
                out.add("pg_replication_slot_retained_bytes", slot_labels,
                        max(0.0, position - slot.restart_lsn))
            for status in analysis.SLOT_WAL_STATES:
                out.add("pg_replication_slot_wal_status", {**slot_labels, "wal_status": status},
                        slot.wal_status == status)
            out.add("pg_replication_slot_safe_wal_size_bytes", slot_labels, slot.safe_wal_size)
            out.add("pg_replication_slot_xmin_age", slot_labels, slot.xmin_age)

    def _role_change(self, out: Exposition, labels: dict, change: RoleChange | None) -> None:
        """The newest planned role change this server knows of (the table replicates)."""
        if change is None:
            return
        out.add("pg_replication_role_change_timeline",
                {**labels, "kind": change.kind, "from_server": change.from_server,
                 "to_server": change.to_server}, change.timeline)
        out.add("pg_replication_role_change_timestamp_seconds", labels, change.at)

    def _standby(
        self, out: Exposition, labels: dict, s: ServerSample, primary: ServerSample | None
    ) -> None:
        lag_bytes = analysis.standby_lag_bytes(s, primary)
        out.add("pg_replication_lag_bytes", labels, lag_bytes)
        out.add("pg_replication_lag_mb", labels, None if lag_bytes is None else lag_bytes / MiB)
        out.add("pg_replication_lag_seconds", labels, analysis.standby_lag_seconds(s, primary))
        out.add("pg_wal_replay_paused", labels, s.replay_paused)
        out.add("pg_wal_receiver_last_msg_receipt_timestamp_seconds", labels,
                s.receiver_last_msg_time)

    def _primary(
        self, out: Exposition, labels: dict, senders: tuple[Sender, ...], current: float
    ) -> None:
        lag_bytes, lag_seconds = analysis.primary_lag(senders, current)
        out.add("pg_replication_lag_bytes", labels, lag_bytes)
        out.add("pg_replication_lag_mb", labels, None if lag_bytes is None else lag_bytes / MiB)
        out.add("pg_replication_lag_seconds", labels, lag_seconds)
        for sender in senders:
            sender_labels = _sender_labels(labels, sender)
            for stage, value in analysis.sender_lag_bytes(sender, current).items():
                out.add("pg_replication_standby_lag_bytes", {**sender_labels, "stage": stage}, value)
            for stage, value in analysis.sender_lag_seconds(sender, current).items():
                out.add("pg_replication_standby_lag_seconds", {**sender_labels, "stage": stage},
                        value)

    # -- standby against primary ----------------------------------------------------------
    def _is_scored_standby(self, outcome: Outcome, primary: ServerSample | None) -> bool:
        """Standbys by configuration or by observation; never the primary of reference."""
        if primary is not None and outcome.sample is primary:
            return False
        sample = outcome.sample
        return outcome.target.address.role == "standby" or bool(sample and sample.in_recovery)

    def _pair(self, out: Exposition, outcome: Outcome, primary: ServerSample | None) -> None:
        labels = {"instance": outcome.target.instance, "server": outcome.target.server}
        standby = outcome.sample
        check = None
        if standby is not None and primary is not None and standby.in_recovery:
            check = analysis.consistent(standby, primary) and not (
                self.checksums is not None and self.checksums.diverged(outcome.target.server))
        out.add("pg_data_consistency_check", labels, check)
        found = analysis.deductions(analysis.HealthInputs(
            standby=standby,
            primary=primary,
            lag_seconds=analysis.standby_lag_seconds(standby, primary) if standby else None,
            lag_bytes=analysis.standby_lag_bytes(standby, primary) if standby else None,
            consistent=check,
        ))
        out.add("pg_replication_health_score", labels, analysis.score(found))
        for reason, points in found.items():
            out.add("pg_replication_health_score_deduction", {**labels, "reason": reason}, points)


def _sender_labels(labels: dict, sender: Sender) -> dict[str, str]:
    return {**labels, "application_name": sender.application_name,
            "client_addr": sender.client_addr}
