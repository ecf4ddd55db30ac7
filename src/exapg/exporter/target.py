"""One watched PostgreSQL server: a persistent connection, bounded in time.

Each server has one worker thread and one connection, reused from scrape to scrape.
A scrape waits for the worker only until its deadline; then the server counts as down
for that scrape. A collection still running is joined by the next scrape rather than
started twice (single flight), so a hanging server never piles up threads or
connections. If the server stops answering in the middle of a query (a frozen host,
a stopped process: no statement timeout can fire then), the socket is shut down from
the scraping thread, which wakes the worker with an error; the next collection
reconnects, after a backoff that grows while connecting keeps failing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace

import psycopg
from psycopg.rows import DictRow, dict_row

from exapg.exporter import queries
from exapg.exporter.environment import ExporterConfig, ServerAddress
from exapg.exporter.samples import ServerSample

log = logging.getLogger("exapg.exporter")

APPLICATION_NAME = "exapg_replication_exporter"


class CollectError(Exception):
    """A server could not be read at this scrape; the message is one line for the log."""


class _ConnectionLost(CollectError):
    """The connection broke under a query (server restarted, socket shut down)."""


@dataclass
class Backoff:
    """Delay before the next connection attempt: doubles per failure, reset on success."""

    base: float = 0.5
    ceiling: float = 15.0
    failures: int = 0
    next_attempt: float = 0.0

    def failed(self, now: float) -> None:
        self.failures += 1
        self.next_attempt = now + min(self.ceiling, self.base * 2 ** (self.failures - 1))

    def succeeded(self) -> None:
        self.failures, self.next_attempt = 0, 0.0

    def wait(self, now: float) -> float:
        return max(0.0, self.next_attempt - now)


@dataclass(frozen=True)
class Outcome:
    """One server at one scrape: a sample, or the reason there is none."""

    target: Target
    sample: ServerSample | None
    error: str | None


class Target:
    def __init__(
        self, address: ServerAddress, config: ExporterConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address
        self.server = address.label
        self.config = config
        self.clock = clock
        self.last_role: str | None = None  # "primary"|"standby" as last observed
        self.errors_total = 0
        self.last_error: str | None = address.problem
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"exporter-{self.server}")
        self._lock = threading.Lock()
        self._inflight: Future[ServerSample] | None = None
        self._conn: psycopg.Connection[DictRow] | None = None
        self._busy: psycopg.Connection[DictRow] | None = None  # the connection inside a query
        self._backoff = Backoff()
        self._heartbeat_column = False
        self._role_changes_column = False
        self._heartbeat_ready = False
        self._heartbeat_off = not config.heartbeat
        self._pending_seq: int | None = None
        self._mark: tuple[int, float] | None = None

    @property
    def instance(self) -> str:
        """The `instance` label: the role this server was configured in, whatever it does
        now, so its series stay one series across a promotion (docs/exporter.md)."""
        return self.address.role

    # -- scraping ------------------------------------------------------------------------
    def begin(self) -> Future[ServerSample] | None:
        """Start a collection, or join the one still running; None if unconfigurable."""
        if self.address.problem:
            return None
        with self._lock:
            if self._inflight is None or self._inflight.done():
                self._inflight = self._pool.submit(self._collect)
            return self._inflight

    def finish(self, future: Future[ServerSample] | None, deadline: float) -> Outcome:
        """Wait for `future` until `deadline`; the outcome says what became of it."""
        try:
            if future is None:
                raise CollectError(str(self.address.problem))  # logged at start-up
            sample = future.result(timeout=max(0.0, deadline - self.clock()))
        except FutureTimeout:
            self._interrupt()
            return self._failure(f"no answer within {self.config.scrape_timeout:g} s")
        except CollectError as exc:
            return self._failure(str(exc))
        except Exception as exc:  # a bug must cost one server one scrape, not the endpoint
            log.debug("%s: collection failed", self.server, exc_info=True)
            return self._failure(f"unexpected error: {exc!r}")
        if self.last_error is not None:
            log.info("%s %s: answering again", sample.role, self.server)
        self.last_error, self.last_role = None, sample.role
        return Outcome(self, sample, None)

    def _failure(self, message: str) -> Outcome:
        self.errors_total += 1
        # One line when the server goes down, not one per scrape: a hanging server
        # alternates between timeouts and broken connections while it stays down.
        if self.last_error is None:
            log.error("%s %s: %s", self.instance, self.server, message)
        elif message != self.last_error:
            log.debug("%s %s: still down: %s", self.instance, self.server, message)
        self.last_error = message
        return Outcome(self, None, message)

    def _interrupt(self) -> None:
        """Wake a worker stuck in a query on a server that stopped answering."""
        conn = self._busy
        if conn is None:
            return  # still connecting: connect_timeout bounds that
        try:
            with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, psycopg.Error):
            pass  # already closed by the worker

    # -- the worker thread -----------------------------------------------------------------
    def _collect(self) -> ServerSample:
        reused = self._conn is not None and not self._conn.closed
        pending = self._pending_seq
        try:
            row = self._read_state()
        except _ConnectionLost:
            if not reused:
                raise
            # The server restarted since the last scrape: its old connection is dead,
            # not the server. One fresh attempt avoids a false pg_up 0.
            row = self._read_state()
        sample = ServerSample.parse(row)
        self._heartbeat_column = sample.heartbeat_exists
        self._role_changes_column = sample.role_changes_exists
        if sample.in_recovery:
            self._mark = self._pending_seq = None
        elif pending is not None and sample.insert_lsn is not None:
            # The heartbeat committed before this statement began, so its commit record
            # lies below the insert position this statement read (even if, committed
            # asynchronously, it is not yet written out).
            self._mark, self._pending_seq = (pending, sample.insert_lsn), None
        return replace(sample, heartbeat_mark=self._mark)

    def _read_state(self) -> DictRow:
        """The state row, or CollectError (_ConnectionLost when the connection broke)."""
        conn = self._connection()
        try:
            return self._query_state(conn)
        except psycopg.Error as exc:
            broken = conn.broken
            self._drop(conn)
            raise (_ConnectionLost if broken else CollectError)(_describe(exc)) from None

    def _query_state(self, conn: psycopg.Connection[DictRow]) -> DictRow:
        with self._using(conn):
            try:
                query = queries.state(heartbeat=self._heartbeat_column,
                                      role_changes=self._role_changes_column)
                row = conn.execute(query, prepare=True).fetchone()
            except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
                # an optional table dropped, or its privilege revoked, meanwhile
                self._heartbeat_column = self._role_changes_column = False
                row = conn.execute(queries.state(), prepare=True).fetchone()
        if row is None:
            raise CollectError("the state query returned no row")
        return row

    def _connection(self) -> psycopg.Connection[DictRow]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        wait = self._backoff.wait(self.clock())
        if wait > 0:
            raise CollectError(self.last_error or "not connected")
        try:
            conn: psycopg.Connection[DictRow] = psycopg.connect(**self._connect_args())
        except psycopg.Error as exc:
            self._backoff.failed(self.clock())
            raise CollectError(_describe(exc)) from None
        self._backoff.succeeded()
        self._conn, self._heartbeat_ready = conn, False
        return conn

    def _connect_args(self) -> dict:
        config = self.config
        args: dict = {
            "host": self.address.host,
            "port": self.address.port,
            "dbname": config.dbname,
            "user": config.user,
            "sslmode": config.sslmode,
            "connect_timeout": config.connect_timeout,
            "application_name": APPLICATION_NAME,
            # jit off: compiling a cheap catalog query would cost more than running it.
            # synchronous_commit off: the heartbeat (our only write) must neither wait for
            # a disk flush nor hang on a synchronous standby that is down.
            "options": f"-c statement_timeout={config.statement_timeout_ms} "
                       f"-c lock_timeout={config.statement_timeout_ms} -c jit=off "
                       "-c synchronous_commit=off",
            "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
            "keepalives_count": 3,
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
        }
        if config.password is not None:
            args["password"] = config.password
        if config.sslrootcert:
            args["sslrootcert"] = config.sslrootcert
        return args

    def _drop(self, conn: psycopg.Connection[DictRow]) -> None:
        self._heartbeat_column = self._role_changes_column = False
        if self._conn is conn:
            self._conn = None
        with suppress(psycopg.Error):
            conn.close()

    @contextmanager
    def _using(self, conn: psycopg.Connection[DictRow]) -> Iterator[None]:
        self._busy = conn
        try:
            yield
        finally:
            self._busy = None

    # -- heartbeat (primary) ---------------------------------------------------------------
    def write_heartbeat(self) -> None:
        """Queue a heartbeat write behind any running collection; nobody waits for it."""
        if self._heartbeat_off or self.address.problem:
            return
        with self._lock:
            self._pool.submit(self._beat)

    def _beat(self) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            return
        try:
            with self._using(conn):
                if not self._heartbeat_ready:
                    for statement in queries.HEARTBEAT_SETUP:
                        conn.execute(statement)
                    self._heartbeat_ready = True
                row = conn.execute(queries.HEARTBEAT_WRITE, prepare=True).fetchone()
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as exc:
            self._heartbeat_off = True
            log.warning("%s: heartbeat disabled, cannot write it: %s", self.server, _describe(exc))
            return
        except psycopg.errors.UniqueViolation:
            return  # another exporter created the table at the same moment; next time
        except psycopg.Error as exc:
            log.debug("%s: heartbeat not written: %s", self.server, _describe(exc))
            if conn.broken:
                self._drop(conn)
            return
        self._pending_seq = int(row["seq"]) if row else None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        conn = self._conn
        if conn is not None:
            self._interrupt()
            self._drop(conn)


def _describe(exc: BaseException) -> str:
    """The informative line of a psycopg error (libpq puts hints on later lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
