"""Login attempts, reserved before the password is checked (`exapg_mgmt.login_attempts`).

The decision and the reservation happen in one transaction under advisory locks on the
user name and the address, so concurrent tries cannot all read "4 failures so far" and
all go on to a password check: an attempt counts as a failure until its check says
otherwise. Kept in the database so that the limits hold across restarts and processes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg

T = TypeVar("T")
ATTEMPT_LOCK = 0x45584C47  # "EXLG": first key of the advisory locks, hashtext(...) the second

FAILURES_SQL = """
SELECT count(*) FILTER (WHERE username = %(user)s),
       extract(epoch FROM now() - max(at) FILTER (WHERE username = %(user)s)),
       count(*) FILTER (WHERE device = %(device)s),
       count(*) FILTER (WHERE client_addr = %(addr)s),
       extract(epoch FROM min(at) FILTER (WHERE client_addr = %(addr)s)
               + make_interval(secs => %(window)s) - now())
  FROM exapg_mgmt.login_attempts
 WHERE at > now() - make_interval(secs => %(window)s) AND outcome <> 'ok'
   AND (username = %(user)s OR client_addr = %(addr)s)
"""


@dataclass(frozen=True)
class Failures:
    """Failed (or still unchecked) attempts within the window."""

    by_user: int  # this user name, from anywhere
    since_last: float | None  # seconds since this user's last failed (or pending) attempt
    by_device: int  # from this device token
    by_address: int  # any user name, from this address
    address_expires_in: float  # seconds until the address's oldest failure leaves the window


def reserve(
    conn: psycopg.Connection,
    *,
    username: str,
    client_addr: str | None,
    device: str | None,
    window: int,
    decide: Callable[[Failures], T | None],
) -> tuple[int | None, T | None]:
    """Lock, count, ask `decide(failures)` for a refusal (None: go on), and record the
    attempt as pending unless refused: (attempt id or None, the decision)."""
    with conn.transaction():
        _lock(conn, username, client_addr)
        failures = _failures(conn, username, client_addr, device, window)
        refusal = decide(failures)
        if refusal is not None:
            return None, refusal
        row = conn.execute(
            "INSERT INTO exapg_mgmt.login_attempts (username, client_addr, device) "
            "VALUES (%s, %s, %s) RETURNING id",
            (username, client_addr, device),
        ).fetchone()
    if random.random() < 0.02:  # noqa: S311 - pruning now and then, not cryptography
        prune(conn, window)
    assert row is not None
    return int(row[0]), None


def finish(conn: psycopg.Connection, *, attempt: int, ok: bool) -> None:
    conn.execute(
        "UPDATE exapg_mgmt.login_attempts SET outcome = %s WHERE id = %s",
        ("ok" if ok else "bad", attempt),
    )


def prune(conn: psycopg.Connection, window: int) -> None:
    conn.execute(
        "DELETE FROM exapg_mgmt.login_attempts WHERE at < now() - make_interval(secs => %s)",
        (window,),
    )


def _lock(conn: psycopg.Connection, username: str, client_addr: str | None) -> None:
    """Always the user name first, then the address: no two logins wait for each other."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (ATTEMPT_LOCK, "u:" + username))
    if client_addr is not None:
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (ATTEMPT_LOCK, "a:" + client_addr)
        )


def _failures(
    conn: psycopg.Connection, username: str, client_addr: str | None, device: str | None, window: int
) -> Failures:
    row = conn.execute(
        FAILURES_SQL, {"user": username, "addr": client_addr, "device": device, "window": window}
    ).fetchone()
    assert row is not None
    return Failures(
        int(row[0]),
        None if row[1] is None else float(row[1]),
        int(row[2]),
        int(row[3]),
        float(row[4] or 0),
    )
