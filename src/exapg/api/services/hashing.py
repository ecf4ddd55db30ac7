"""Password checks off the event loop, few at a time, in two lanes.

An argon2 check costs a quarter of a second of one core. Unbounded, a login flood puts
every core (and, before, every pooled connection) to work on attackers' guesses. Here
checks run in their own threads, at most `slots` at once per lane; a login that finds its
lane full is refused at once (429) instead of queueing. Logins from a known device (see
auth.py) have a lane of their own, so a flood of strangers cannot keep them out.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from enum import StrEnum

from exapg.api.core.errors import RateLimitedError
from exapg.api.core.security import verify_password


class Lane(StrEnum):
    UNKNOWN = "unknown"  # a login without a valid device token
    KNOWN = "known"  # from a device this user logged in from before


def default_slots() -> int:
    """Half the cores for strangers' guesses: the API and PostgreSQL keep the rest."""
    return max(1, (os.cpu_count() or 2) // 2)


class PasswordChecks:
    def __init__(self, slots: int | None = None) -> None:
        unknown = slots or default_slots()
        self._free = {Lane.UNKNOWN: unknown, Lane.KNOWN: 1}
        self._executor = ThreadPoolExecutor(unknown + 1, thread_name_prefix="exapg-argon2")

    @contextmanager
    def slot(self, lane: Lane) -> Iterator[Lane]:
        """A check slot in `lane`, a known device falling back to the strangers' lane;
        RateLimitedError at once when none is free. Event loop only (no lock needed)."""
        chosen = next((c for c in (lane, Lane.UNKNOWN) if self._free[c] > 0), None)
        if chosen is None:
            raise RateLimitedError("too many logins are being checked: try again in a second", 1)
        self._free[chosen] -= 1
        try:
            yield chosen
        finally:
            self._free[chosen] += 1

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, verify_password, stored_hash, password)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
