"""Login limits, tried as an attacker on the machine would: bad passwords from loopback,
rotating source addresses, concurrent tries, and a flood while an admin works.

The test server, like uvicorn by default, believes X-Forwarded-For from its loopback
peer: a header stands in for a client at another address (as behind the front end's
proxy). The supervised local backend believes none, and sees every local client as
127.0.0.1.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from exapg.api.core.db import POOL_WAIT
from exapg.api.services.auth import FREE_FAILURES, MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_DEVICE
from tests.api.fixtures import unique_name

pytestmark = pytest.mark.integration
_used_addresses: set[str] = set()


def new_address() -> str:
    """An address of the benchmarking range 198.18.0.0/15 no other test logs in from."""
    while True:
        address = f"198.18.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"
        if address not in _used_addresses:
            _used_addresses.add(address)
            return address


def login(api_server, username: str, password: str, *, address: str | None = None,
          device: str | None = None) -> httpx.Response:
    body = {"username": username, "password": password}
    if device:
        body["device_token"] = device
    headers = {"X-Forwarded-For": address} if address else {}
    with api_server.client() as client:
        return client.post("/api/auth/login", json=body, headers=headers)


def throttled(answers: list[httpx.Response], free: int, seconds: float) -> None:
    """After `free` failures, checks come one per delay (1 s, 2 s, 4 s, ...): within
    `seconds`, k more only when 1 + 2 + ... + 2^(k-1) <= seconds. The rest were refused."""
    extra = math.floor(math.log2(seconds + 1)) + 1  # one more, for a try on the boundary
    statuses = [a.status_code for a in answers]
    assert checked(answers) <= free + extra, (statuses, seconds)
    refused = [a for a in answers if a.status_code == 429]
    assert refused and all(0 < int(a.headers["retry-after"]) <= 61 for a in refused), statuses


def timed(tries: Iterable[httpx.Response]) -> tuple[list[httpx.Response], float]:
    started = time.monotonic()
    answers = list(tries)
    return answers, time.monotonic() - started


def checked(answers: list[httpx.Response]) -> int:
    """How many of the answers come from a password check (401), not from a limit (429)."""
    assert all(a.status_code in (401, 429) for a in answers), [a.status_code for a in answers]
    return sum(a.status_code == 401 for a in answers)


def test_bad_passwords_do_not_lock_a_user_out_of_a_known_device(api_server, make_user):
    """Anyone on the machine can make bad tries for `admin`; the real user, on a browser
    that logged in before, still gets in at once, with the right password only."""
    victim = make_user("viewer")
    device = login(api_server, victim.username, victim.password).json()["device_token"]
    assert device
    attack, seconds = timed(login(api_server, victim.username, "not-the-password") for _ in range(8))
    throttled(attack, FREE_FAILURES, seconds)
    # a stranger with the right password waits like the attacker...
    assert login(api_server, victim.username, victim.password).status_code == 429
    # ...the user's own browser does not
    answer = login(api_server, victim.username, victim.password, device=device)
    assert answer.status_code == 200, answer.text
    assert login(api_server, victim.username, "not-the-password", device=device).status_code == 401
    # a device token is the user's own: it opens nothing for another name
    other = make_user("viewer")
    assert login(api_server, other.username, "not-the-password", device=device).status_code == 401


def test_a_stolen_device_token_uses_up_its_failures_then_waits_like_a_stranger(api_server, make_user):
    victim = make_user("viewer")
    device = login(api_server, victim.username, victim.password).json()["device_token"]
    stolen, seconds = timed(login(api_server, victim.username, f"guess-{i}", device=device)
                            for i in range(9))
    throttled(stolen, MAX_FAILURES_PER_DEVICE, seconds)


def test_failures_from_loopback_never_lock_the_address(api_server, make_user):
    """The local backend sees everyone as 127.0.0.1: failures under many names from there
    must not lock out the machine's other users."""
    account = make_user("viewer")
    for _ in range(MAX_FAILURES_PER_ADDRESS + 3):
        assert login(api_server, unique_name("ghost"), "not-the-password").status_code == 401
    assert login(api_server, account.username, account.password).status_code == 200


def test_a_real_address_with_many_failures_is_locked(api_server, make_user):
    account, address = make_user("viewer"), new_address()
    for _ in range(MAX_FAILURES_PER_ADDRESS):
        login(api_server, unique_name("ghost"), "not-the-password", address=address)
    blocked = login(api_server, account.username, account.password, address=address)
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert login(api_server, account.username, account.password, address=new_address()).status_code == 200


def test_rotating_addresses_do_not_outrun_the_limit(api_server, make_user, admin):
    victim = make_user("viewer")
    answers, seconds = timed(login(api_server, victim.username, "guess", address=new_address())
                             for _ in range(12))
    assert [a.status_code for a in answers[:FREE_FAILURES]] == [401] * FREE_FAILURES
    # after the free failures, one check per growing delay, whatever the address
    throttled(answers, FREE_FAILURES, seconds)


def test_concurrent_tries_are_checked_no_more_than_the_limit(api_server, make_user, admin):
    """40 tries at once, three times over: the limit is reserved before the check, so
    concurrency cannot slip extra checks through."""
    victim = make_user("viewer")
    with ThreadPoolExecutor(40) as pool:
        answers = []
        for _ in range(3):
            answers += pool.map(lambda _: login(api_server, victim.username, "guess",
                                                address=new_address()), range(40))
    assert checked(answers) <= FREE_FAILURES + 1, [a.status_code for a in answers]
    audited = admin.get("/api/audit", params={"action": "login", "actor": victim.username,
                                              "limit": 500}).json()["items"]
    bad = [e for e in audited if e["detail"].get("reason") == "bad_credentials"]
    assert len(bad) == checked(answers)


def test_a_login_flood_leaves_the_api_to_others(api_server, admin):
    """40 clients log in with wrong passwords as fast as they can for a few seconds; the
    admin's requests meanwhile all answer, none waiting on a pooled connection, and the
    admin's own login (from a known browser) goes through."""
    first = login(api_server, "admin", api_server.admin_password)
    device = first.json().get("device_token")
    stop = threading.Event()
    flood: list[int] = []

    def attacker() -> None:
        with httpx.Client(base_url=api_server.url, timeout=30) as client:
            while not stop.is_set():
                name = unique_name("flood")
                answer = client.post("/api/auth/login", json={"username": name, "password": "x"})
                flood.append(answer.status_code)

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(40)]
    for thread in threads:
        thread.start()
    slowest, statuses = 0.0, []
    try:
        time.sleep(1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            started = time.monotonic()
            statuses.append(admin.get("/api/users").status_code)
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.05)
        own = login(api_server, "admin", api_server.admin_password, device=device)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert set(statuses) == {200}, statuses
    assert slowest < POOL_WAIT / 2, slowest
    assert own.status_code == 200, own.text
    assert 429 in flood and set(flood) <= {401, 429}, set(flood)


def test_a_stolen_session_cannot_guess_the_password_faster_than_a_login(api_server, make_user):
    """Changing one's password checks the current one: under the same limits as a login."""
    victim = make_user("viewer")
    with api_server.client(victim.token) as thief:
        answers, seconds = timed(thief.post("/api/auth/password", json={
            "current_password": f"guess-{i}", "new_password": "Tr0ub4dor&3-horse"}) for i in range(10))
    throttled(answers, FREE_FAILURES, seconds)
