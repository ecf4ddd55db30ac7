"""Login refusals remembered in memory (see auth.py for the limits themselves)."""

from __future__ import annotations

import time

from exapg.api.core.errors import RateLimitedError


class Gate:
    """Refusals remembered by this process, so that a flood is answered without touching
    the database. It only ever refuses; the database decides every attempt it lets by."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def check(self, keys: list[str]) -> None:
        now = time.monotonic()
        for key in keys:
            until = self._until.get(key, 0.0)
            if until > now:
                raise RateLimitedError(message(key, until - now), int(until - now) + 1)

    def close(self, key: str, seconds: float) -> None:
        if len(self._until) > 10_000:
            self._until.clear()
        self._until[key] = time.monotonic() + seconds


def message(key: str, wait: float) -> str:
    what = "from this address" if key.startswith("a:") else "for this user"
    return f"too many failed logins {what}: try again in {int(wait) + 1} s"


