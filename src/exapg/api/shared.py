"""A reading shared between concurrent requests for a short time (single flight).

However many dashboards are open, the coordinator answers at most one overview query
per `ttl`, and the JSON is built once for all of them; the answer's `sampled_at` says
how fresh it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class SharedReading:
    """The last reading, reused for `ttl` seconds; one refresh at a time."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._value: bytes | None = None
        self._at = 0.0
        self._lock: asyncio.Lock | None = None

    def _fresh(self) -> bytes | None:
        young = time.monotonic() - self._at < self.ttl
        return self._value if young else None

    async def get(self, load: Callable[[], Awaitable[bytes]]) -> bytes:
        value = self._fresh()
        if value is not None:
            return value
        self._lock = self._lock or asyncio.Lock()
        if self._lock.locked() and self._value is not None and self.ttl > 0:
            return self._value  # being refreshed: the previous reading, rather than a queue
        async with self._lock:
            value = self._fresh()
            if value is None:
                value = await load()
                self._value, self._at = value, time.monotonic()
            return value


class SessionCache:
    """Token checks remembered for `ttl` seconds, so most requests skip a round trip.

    This process forgets an entry at once when it logs a token out or changes its user;
    another API process sees such a change within `ttl`.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, str, tuple[str, bool] | None]] = {}
        self._pending: dict[str, asyncio.Future[tuple[str, bool] | None]] = {}

    async def check(
        self,
        jti: str,
        username: str,
        load: Callable[[], Awaitable[tuple[str, bool] | None]],
    ) -> tuple[str, bool] | None:
        """The token's state, loaded once for all concurrent requests carrying it.

        Waiters share one future rather than queueing on a lock: a lock hands over to one
        waiter per event-loop turn, which stalled 32 concurrent requests for 300 ms.
        """
        known, state = self.get(jti)
        if known:
            return state
        if self.ttl <= 0:
            return await load()
        pending = self._pending.get(jti)
        if pending is None:
            pending = asyncio.ensure_future(self._load(jti, username, load))
            self._pending[jti] = pending
            pending.add_done_callback(lambda _: self._pending.pop(jti, None))
        return await asyncio.shield(pending)

    async def _load(
        self,
        jti: str,
        username: str,
        load: Callable[[], Awaitable[tuple[str, bool] | None]],
    ) -> tuple[str, bool] | None:
        state = await load()
        self.put(jti, username, state)
        return state

    def get(self, jti: str) -> tuple[bool, tuple[str, bool] | None]:
        """(known, state): state is what the database said, None for a deleted user."""
        entry = self._entries.get(jti)
        if entry is None or time.monotonic() - entry[0] >= self.ttl:
            return False, None
        return True, entry[2]

    def put(self, jti: str, username: str, state: tuple[str, bool] | None) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[jti] = (time.monotonic(), username, state)

    def forget_token(self, jti: str) -> None:
        self._entries.pop(jti, None)

    def forget_user(self, username: str) -> None:
        for jti in [j for j, e in self._entries.items() if e[1] == username]:
            self._entries.pop(jti, None)
