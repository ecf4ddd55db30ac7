"""A reading shared between concurrent requests for a short time (single flight).

However many dashboards are open, the coordinator answers at most one overview query
per `ttl`, and the JSON is built once for all of them; the answer's `sampled_at` says
how fresh it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from exapg.api.crud.users import UserState


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


Check = tuple[UserState | None, bool]  # the user's state (None: deleted), token logged out


class SessionCache:
    """Token checks remembered for `ttl` seconds, so most requests skip a round trip, and
    the last state seen of each user, which answers while the coordinator is down.

    This process forgets an entry at once when it logs a token out or changes its user;
    another API process sees such a change within `ttl`.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, str, int, Check]] = {}
        self._pending: dict[str, asyncio.Future[Check]] = {}
        self._last: dict[int, UserState | None] = {}  # by user id, kept for the token's life
        self._revoked: set[str] = set()  # logged out through this process

    async def check(self, jti: str, username: str, uid: int, load: Callable[[], Awaitable[Check]]) -> Check:
        """The token's state, loaded once for all concurrent requests carrying it.

        Waiters share one future rather than queueing on a lock: a lock hands over to one
        waiter per event-loop turn, which stalled 32 concurrent requests for 300 ms.
        Raises UnavailableError when the coordinator does not answer (see `last_known`).
        """
        known, state = self.get(jti)
        if known:
            return state
        if self.ttl <= 0:
            return self._remember(jti, username, uid, await load())
        pending = self._pending.get(jti)
        if pending is None:
            pending = asyncio.ensure_future(self._load(jti, username, uid, load))
            self._pending[jti] = pending
            pending.add_done_callback(lambda _: self._pending.pop(jti, None))
        return await asyncio.shield(pending)

    async def _load(self, jti: str, username: str, uid: int, load: Callable[[], Awaitable[Check]]) -> Check:
        return self._remember(jti, username, uid, await load())

    def _remember(self, jti: str, username: str, uid: int, state: Check) -> Check:
        self.put(jti, username, uid, state)
        return state

    def get(self, jti: str) -> tuple[bool, Check]:
        """(known, state): state is what the database said within `ttl`."""
        entry = self._entries.get(jti)
        if entry is None or time.monotonic() - entry[0] >= self.ttl:
            return False, (None, False)
        return True, entry[3]

    def put(self, jti: str, username: str, uid: int, state: Check) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        if len(self._last) > 10_000:
            self._last.clear()
        self._entries[jti] = (time.monotonic(), username, uid, state)
        self._last[uid] = state[0]
        if state[1]:
            self._revoked.add(jti)

    def last_known(self, jti: str, uid: int, claimed: UserState) -> Check:
        """The state to trust while the coordinator is down: the last one seen of this user,
        or, for a user this process has not seen (restarted meanwhile), the token's signed
        claims. Only reads are allowed on it (see deps.current_user)."""
        return self._last.get(uid, claimed), jti in self._revoked

    def forget_token(self, jti: str) -> None:
        self._entries.pop(jti, None)
        if len(self._revoked) > 10_000:
            self._revoked.clear()
        self._revoked.add(jti)

    def forget_user(self, username: str) -> None:
        """The user was changed here: drop its checks, and trust none of its tokens while
        the coordinator is down until its new state has been read."""
        for jti, entry in [(j, e) for j, e in self._entries.items() if e[1] == username]:
            self._entries.pop(jti, None)
            self._last[entry[2]] = None
