"""Optional table checksums compared between the primary and each standby.

A checksum taken on the primary is only comparable with one taken on a standby at the
same point of the WAL. So each round is a sandwich: primary checksum (and the LSN it is
certainly below), wait until the standby has replayed past that LSN, standby checksum,
primary checksum again. If the two primary checksums differ the table changed meanwhile
and the round decides nothing; if they agree, the standby (read between them) must
agree too. A mismatch counts only when two rounds in a row find it, since a change
undone between the two primary reads cannot be told apart from divergence.

It runs in its own thread, over its own connections, with its own (longer) statement
timeout: checksums of large tables must never hold up a scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from exapg.exporter.environment import ExporterConfig, ServerAddress

log = logging.getLogger("exapg.exporter")

# Order-independent and constant-memory: the sum of a 64-bit hash of every row's text.
_CHECKSUM = sql.SQL(
    "SELECT ({lsn} - '0/0')::float8 AS lsn, count(*) AS row_count, "
    "coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)::text "
    "AS digest FROM {table} AS t"
)
PRIMARY_LSN = sql.SQL("pg_current_wal_insert_lsn()")  # at or past every visible commit
STANDBY_LSN = sql.SQL("pg_last_wal_replay_lsn()")


@dataclass(frozen=True)
class Checksum:
    lsn: float
    row_count: int
    digest: str

    def same_data(self, other: Checksum) -> bool:
        return (self.row_count, self.digest) == (other.row_count, other.digest)


def verdict(first: Checksum, standby: Checksum, second: Checksum) -> bool | None:
    """True: the standby agrees; False: it differs at a point the primary did not change;
    None: undecided (the table changed between the primary's two reads, or the standby
    had not replayed far enough)."""
    if standby.lsn < first.lsn or not first.same_data(second):
        return None
    return first.same_data(standby)


def table_identifier(name: str) -> sql.Composable:
    parts = name.split(".", 1)
    return sql.Identifier(*parts)


class ChecksumVerifier:
    """Every `interval` seconds, one sandwich per table and standby; results by server."""

    def __init__(self, config: ExporterConfig, interval: float = 300.0,
                 timeout_ms: int = 60_000, replay_wait: float = 30.0) -> None:
        self.config, self.interval = config, interval
        self.timeout_ms, self.replay_wait = timeout_ms, replay_wait
        self._mismatches: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="exporter-checksums", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def diverged(self, server: str) -> bool:
        """True once a table has mismatched on two rounds in a row on that standby."""
        with self._lock:
            return any(n >= 2 for (s, _), n in self._mismatches.items() if s == server)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_round()
            except Exception as exc:  # a failed round must not end the thread
                log.warning("table checksums: round failed: %s", exc)
            self._stop.wait(self.interval)

    def run_round(self) -> None:
        primary, usable = self.config.primary, [s for s in self.config.standbys if not s.problem]
        if primary.problem or not usable:
            return
        with self._connect(primary) as pconn:
            for standby in usable:
                try:
                    with self._connect(standby) as sconn:
                        for table in self.config.checksum_tables:
                            self._compare(pconn, sconn, standby.label, table)
                except psycopg.Error as exc:
                    log.info("table checksums: %s skipped: %s", standby.label, exc)

    def _compare(self, pconn: psycopg.Connection, sconn: psycopg.Connection, server: str,
                 table: str) -> None:
        first = _checksum(pconn, table, PRIMARY_LSN)
        if not self._wait_replay(sconn, first.lsn):
            return  # lagging: the lag metrics say so; nothing to compare yet
        result = verdict(first, _checksum(sconn, table, STANDBY_LSN),
                         _checksum(pconn, table, PRIMARY_LSN))
        self._record(server, table, result)

    def _record(self, server: str, table: str, result: bool | None) -> None:
        if result is None:
            return
        with self._lock:
            key = (server, table)
            self._mismatches[key] = 0 if result else self._mismatches.get(key, 0) + 1
            if self._mismatches[key] == 2:
                log.error("table checksums: %s differs from the primary on standby %s", table, server)

    def _wait_replay(self, conn: psycopg.Connection, lsn: float) -> bool:
        deadline = time.monotonic() + self.replay_wait
        while time.monotonic() < deadline and not self._stop.is_set():
            row = conn.execute("SELECT (pg_last_wal_replay_lsn() - '0/0')::float8").fetchone()
            if row and row[0] is not None and row[0] >= lsn:
                return True
            time.sleep(0.2)
        return False

    def _connect(self, address: ServerAddress) -> psycopg.Connection:
        config = self.config
        return psycopg.connect(
            host=address.host, port=address.port, dbname=config.dbname, user=config.user,
            password=config.password, sslmode=config.sslmode,
            connect_timeout=config.connect_timeout, autocommit=True,
            application_name="exapg_replication_exporter_checksums",
            options=f"-c statement_timeout={self.timeout_ms}",
        )


def _checksum(conn: psycopg.Connection, table: str, lsn: sql.Composable) -> Checksum:
    query = _CHECKSUM.format(lsn=lsn, table=table_identifier(table))
    row = conn.execute(query).fetchone()
    assert row is not None  # an aggregate always returns a row
    return Checksum(float(row[0]), int(row[1]), str(row[2]))
