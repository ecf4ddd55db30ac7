"""Connection pools, one per node, created on first use.

The hot path (token check and dashboard overview) uses an asyncio pool on the
primary, so those requests never wait for a worker thread; everything else uses the
thread-safe pools from sync routes. Every connection is autocommit, carries a statement timeout and the application name
`exapg-mgmt` (so the query monitor can tell the UI's own sessions apart).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from exapg.api.access import StackAccess
from exapg.api.core.errors import UnavailableError
from exapg.errors import first_line

APP_NAME = "exapg-mgmt"
STATEMENT_TIMEOUT_MS = 10_000
POOL_WAIT = 5.0
CONNECT_TIMEOUT = 2  # seconds (libpq's minimum): a host that drops packets is down soon
# After a node failed to give a connection, requests fail at once instead of each waiting
# POOL_WAIT for it (an outage shows in the UI at once, not after 5 s); every DOWN_HOLD
# seconds one request tries again, waiting at most PROBE_WAIT.
DOWN_HOLD = 3.0
PROBE_WAIT = 1.0
# A pool retries a failed connection with a doubling delay until this many seconds have
# passed (psycopg_pool's default: 300), then leaves it to the next request: with the
# default, a node back after a minute's outage was not used again for another half minute.
RECONNECT_TIMEOUT = 2.0
# The primary's pool is not keyed by a node name: it is whichever node the topology puts
# first when the pool opens (after a switchover, the node named "standby"); the runtime
# restarts the API after a change of primary, so its pools open on the new one.
PRIMARY = ""
log = logging.getLogger(__name__)


class Pools:
    def __init__(self, access: StackAccess, *, max_size: int = 8) -> None:
        self.access = access
        self.max_size = max_size
        self._pools: dict[str, ConnectionPool] = {}
        self._lock = threading.Lock()
        self._async: AsyncConnectionPool | None = None
        self._down: dict[str, tuple[float, str]] = {}  # node -> (when it failed, why)

    def pool(self, node: str) -> ConnectionPool:
        with self._lock:
            if node not in self._pools:
                self._pools[node] = self._open(node)
            return self._pools[node]

    def name(self, node: str) -> str:
        """The node a pool key stands for."""
        return node or self.access.topology().coordinator.name

    def _kwargs(self, node: str) -> dict[str, object]:
        return self.access.dsn(self.name(node)).kwargs(
            application_name=APP_NAME,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        )

    def _open(self, node: str) -> ConnectionPool:
        return ConnectionPool(
            kwargs=self._kwargs(node),
            min_size=1 if node == PRIMARY else 0,
            max_size=self.max_size,
            timeout=POOL_WAIT,
            max_idle=300,
            check=ConnectionPool.check_connection,  # no dead connection after a restart
            reconnect_timeout=RECONNECT_TIMEOUT,
            open=True,
            name=f"exapg-mgmt-{node or 'primary'}",
        )

    async def open_async(self) -> None:
        """The primary's asyncio pool; opened inside the server's event loop."""
        self._async = AsyncConnectionPool(
            kwargs=self._kwargs(PRIMARY),
            min_size=2,
            max_size=self.max_size,
            timeout=POOL_WAIT,
            max_idle=300,
            check=AsyncConnectionPool.check_connection,
            reconnect_timeout=RECONNECT_TIMEOUT,
            open=False,
            name="exapg-mgmt-async",
        )
        await self._async.open(wait=False)

    def down(self, node: str = PRIMARY) -> str | None:
        """Why `node` is taken for down (its last try failed), or None."""
        failed = self._down.get(node)
        return failed[1] if failed else None

    def _admit(self, node: str, timeout: float) -> float:
        """How long this request may wait for `node`: UnavailableError at once while it is
        down, except for one probe per DOWN_HOLD (which others do not wait behind)."""
        failed = self._down.get(node)
        if failed is None:
            return timeout
        if time.monotonic() - failed[0] < DOWN_HOLD:
            raise UnavailableError(failed[1])
        self._down[node] = (time.monotonic(), failed[1])  # this request is the probe
        return min(timeout, PROBE_WAIT)

    def _failed(self, node: str, reason: str) -> UnavailableError:
        self._down[node] = (time.monotonic(), reason)
        return UnavailableError(reason)

    @asynccontextmanager
    async def aconnection(
        self, timeout: float = POOL_WAIT
    ) -> AsyncIterator[psycopg.AsyncConnection]:
        if self._async is None:
            raise UnavailableError(f"node {self._shown(PRIMARY)}: the primary's pool is not open yet")
        timeout = self._admit(PRIMARY, timeout)
        with self._reaching(PRIMARY, timeout):
            async with self._async.connection(timeout=timeout) as conn:
                self._down.pop(PRIMARY, None)  # a checked connection: the node is up
                yield conn

    async def close_async(self) -> None:
        if self._async is not None:
            await self._async.close(timeout=2)
            self._async = None

    @contextmanager
    def connection(
        self, node: str = PRIMARY, timeout: float = POOL_WAIT
    ) -> Iterator[psycopg.Connection]:
        """A pooled connection to `node` (by default the primary); a node that cannot be
        reached becomes UnavailableError."""
        timeout = self._admit(node, timeout)
        with self._reaching(node, timeout), self.pool(node).connection(timeout=timeout) as conn:
            self._down.pop(node, None)  # a checked connection: the node is up
            yield conn

    @contextmanager
    def _reaching(self, node: str, timeout: float) -> Iterator[None]:
        """One translation for both pools: a node that gives no connection is taken for
        down (UnavailableError); a statement timeout means it answers (504, not down)."""
        try:
            yield
        except psycopg.errors.QueryCanceled:
            raise
        except PoolTimeout:
            raise self._failed(node, _unreachable(self._shown(node), timeout)) from None
        except psycopg.OperationalError as exc:
            raise self._failed(node, f"node {self._shown(node)}: {first_line(exc)}") from None

    def _shown(self, node: str) -> str:
        """A pool key as messages name it (the primary's, by its node's name)."""
        try:
            return self.name(node)
        except Exception:
            return node or "primary"

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close(timeout=2)


def _unreachable(node: str, timeout: float) -> str:
    return f"node {node} is not reachable (no connection within {timeout:g}s)"

