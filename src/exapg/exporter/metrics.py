"""Every metric the exporter serves: name, type, help and labels, in one table.

docs/exporter.md describes the same list; a unit test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

# Both label values are configured and never change with what the server does:
# instance: the role it was configured in (primary|standby); server: its name (host:port).
# pg_replication_is_replica says what it is now.
SERVER = ("instance", "server")
SENDER = (*SERVER, "application_name", "client_addr")
SLOT = (*SERVER, "slot_name")


@dataclass(frozen=True)
class Spec:
    kind: str  # "gauge" or "counter" (the exposed counter sample gets "_total")
    help: str
    labels: tuple[str, ...]
    legacy: bool = False  # a name of the original exporter, kept as it was


SPECS: dict[str, Spec] = {
    # -- per server ---------------------------------------------------------------------
    "pg_up": Spec("gauge", "1 if the server answered this scrape, 0 if not (its other series "
                  "are then absent).", SERVER),
    "pg_replication_is_replica": Spec("gauge", "1 if the server is in recovery (a standby), 0 if "
                                      "it is a primary (writable), whatever role it was "
                                      "configured in.", SERVER),
    "pg_timeline_id": Spec("gauge", "Timeline of the server's WAL (standby: of the WAL it "
                           "receives, else of its last restartpoint).", SERVER),
    "pg_replication_role_change_timeline": Spec("gauge", "Timeline the newest switchover or "
                                                "failover ExaPG recorded (exapg.role_changes) "
                                                "led to, as this server sees the record.",
                                                (*SERVER, "kind", "from_server", "to_server")),
    "pg_replication_role_change_timestamp_seconds": Spec("gauge", "Unix time of that record.",
                                                         SERVER),
    "pg_wal_position_bytes": Spec("counter", "Byte position of the server's WAL: written "
                                  "(primary) or replayed (standby).", SERVER),
    "pg_wal_generation_rate": Spec("gauge", "Bytes per second the WAL position advanced between "
                                   "collections at least 1 s apart (primary: written; standby: "
                                   "replayed).", SERVER, legacy=True),
    "pg_wal_senders": Spec("gauge", "WAL sender processes on the server (rows of "
                           "pg_stat_replication).", SERVER, legacy=True),
    "pg_wal_receivers": Spec("gauge", "WAL receiver processes on the server (1 on a standby whose "
                             "receiver runs, else 0).", SERVER, legacy=True),
    "pg_replication_connections": Spec("gauge", "Standbys streaming from the server (WAL senders "
                                       "in state streaming).", SERVER, legacy=True),
    "pg_replication_sync_state": Spec("gauge", "Synchronous state of each WAL sender: 0 async, "
                                      "1 potential, 2 sync, 3 quorum.",
                                      (*SENDER, "sync_state"), legacy=True),
    "pg_replication_lag_bytes": Spec("gauge", "Standby: WAL bytes the primary has written and the "
                                     "standby not replayed, against the primary LSN of the same "
                                     "scrape. Primary: largest replay lag of its standbys.",
                                     SERVER, legacy=True),
    "pg_replication_lag_seconds": Spec("gauge", "Standby: age of the last replayed commit while "
                                       "replay is behind, 0 when all WAL received is replayed. "
                                       "Primary: largest replay_lag of its standbys.",
                                       SERVER, legacy=True),
    "pg_replication_lag_mb": Spec("gauge", "Deprecated: pg_replication_lag_bytes in MiB "
                                  "(1048576 bytes); use pg_replication_lag_bytes.",
                                  SERVER, legacy=True),
    "pg_replication_standby_lag_bytes": Spec("gauge", "Per standby streaming from this server, WAL "
                                             "bytes not yet sent/written/flushed/replayed.",
                                             (*SENDER, "stage")),
    "pg_replication_standby_lag_seconds": Spec("gauge", "Per standby streaming from this server, "
                                               "pg_stat_replication write/flush/replay lag (0 "
                                               "once caught up).", (*SENDER, "stage")),
    "pg_wal_replay_paused": Spec("gauge", "1 if WAL replay is paused (or pausing) on this "
                                 "standby.", SERVER),
    "pg_wal_receiver_last_msg_receipt_timestamp_seconds": Spec(
        "gauge", "Unix time the standby's WAL receiver last heard from its primary.", SERVER),
    "pg_replication_slots_total": Spec("gauge", "Replication slots on the server.", SERVER,
                                       legacy=True),
    "pg_replication_slots_active": Spec("gauge", "Replication slots in use by a connection.",
                                        SERVER, legacy=True),
    "pg_replication_slots_inactive": Spec("gauge", "Replication slots nobody uses (they still "
                                          "retain WAL).", SERVER, legacy=True),
    "pg_replication_slot_retained_bytes": Spec("gauge", "WAL bytes the slot keeps from removal.",
                                               SLOT),
    "pg_replication_slot_wal_status": Spec("gauge", "1 for the slot's current wal_status "
                                           "(reserved, extended, unreserved, lost), 0 for the "
                                           "others.", (*SLOT, "wal_status")),
    "pg_replication_slot_safe_wal_size_bytes": Spec("gauge", "WAL bytes that can still be written "
                                                    "before the slot is in danger of losing "
                                                    "WAL.", SLOT),
    "pg_replication_slot_xmin_age": Spec("gauge", "Age in transactions of the oldest xmin or "
                                         "catalog_xmin the slot holds back.", SLOT),
    # -- pair ---------------------------------------------------------------------------
    "pg_data_consistency_check": Spec("gauge", "1 if this standby is consistent with the primary "
                                      "(system identifier, timeline, replayed heartbeat), 0 if "
                                      "not.", SERVER, legacy=True),
    "pg_replication_health_score": Spec("gauge", "Replication health of this standby, 0 to 100: "
                                        "100 minus pg_replication_health_score_deduction.",
                                        SERVER, legacy=True),
    "pg_replication_health_score_deduction": Spec("gauge", "Points deducted from the health "
                                                  "score, by reason.", (*SERVER, "reason")),
    # -- the exporter itself ----------------------------------------------------------------
    "pg_replication_exporter_scrape_duration_seconds": Spec("gauge", "Time the last collection "
                                                            "took.", ()),
    "pg_replication_exporter_errors": Spec("counter", "Scrapes at which the server could not be "
                                           "read.", ("server",)),
    "pg_replication_exporter_collector_success": Spec("gauge", "1 if the server was read at this "
                                                      "scrape, 0 if not.", ("server",)),
}


class Exposition:
    """The families of one scrape, filled in any order, yielded in table order."""

    def __init__(self) -> None:
        self._families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        self._seen: set[tuple[str, ...]] = set()

    def add(self, name: str, labels: dict[str, str], value: float | None) -> None:
        """Add a sample; None (unknown) adds nothing, nor does a repeated label set (two
        standbys with the same application_name on one host: the first one is kept)."""
        spec = SPECS[name]
        key = (name, *(labels[label] for label in spec.labels))
        if value is None or key in self._seen:
            return
        self._seen.add(key)
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = (
                CounterMetricFamily(name, spec.help, labels=spec.labels) if spec.kind == "counter"
                else GaugeMetricFamily(name, spec.help, labels=spec.labels))
        family.add_metric(list(key[1:]), float(value))

    def families(self) -> list[Metric]:
        return [self._families[name] for name in SPECS if name in self._families]
