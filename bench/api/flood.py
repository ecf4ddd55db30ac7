"""An admin's requests while 40 clients flood the login, side by side with no flood.

A real HA stack (coordinator + standby + pgBouncer) and the management API under uvicorn
are started on free ports. The admin, in this process, calls GET /api/users one request
after another (one keep-alive connection, 20 ms apart) for `--seconds`; that is done
without a flood and during a flood, alternating, in `--rounds` rounds. The flood runs in
another process: 40 clients, each on its own connection from its own loopback source
address (127.0.0.2 to 127.0.0.41), POST /api/auth/login with wrong passwords as fast as
answers come, half of them against `admin`, half under a new user name each time (so
that every one of those asks for a password check). It is bounded: loopback only, at
most `--seconds` + 2 s and `--max-logins` requests per client per round.

During each flood the admin also logs in again from its known browser (its device
token), `--own-logins` times, to show that the flood does not keep it out.

    .venv/bin/python bench/api/flood.py [--seconds 10] [--rounds 3] [--out flood.json]

The same script measured the API as it was before these limits (PYTHONPATH pointing at an
older tree's src/, `--out flood-before.json`): see results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import secrets
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from run import Api, percentile  # noqa: E402

from tests.conftest import build_stack  # noqa: E402

GOAL_P99_MS = 100.0
CLIENTS = 40
ADMIN_PAUSE = 0.02


def login_request(host: str, username: str) -> bytes:
    body = json.dumps({"username": username, "password": "not-the-password"}).encode()
    head = (f"POST /api/auth/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line[15:]) for line in head.split(b"\r\n")
                   if line[:15].lower() == b"content-length:"), 0)
    await reader.readexactly(length)
    return int(head[9:12])


async def flood_client(index: int, host: str, port: int, deadline: float, limit: int) -> Counter:
    """One attacker: its own source address, wrong passwords until the deadline."""
    source = f"127.0.0.{2 + index}"
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    seen: Counter = Counter()
    try:
        for _ in range(limit):
            if time.monotonic() > deadline:
                break
            name = "admin" if index % 2 == 0 else f"flood{secrets.token_hex(4)}"
            writer.write(login_request(host, name))
            seen[await read_answer(reader)] += 1
    finally:
        writer.close()
    return seen


def flood(url: str, seconds: float, limit: int, out: multiprocessing.Queue) -> None:
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + seconds

    async def all_clients() -> Counter:
        found = await asyncio.gather(*(flood_client(i, host, int(port), deadline, limit)
                                       for i in range(CLIENTS)))
        return sum(found, Counter())

    started = time.monotonic()
    seen = asyncio.run(all_clients())
    out.put({"statuses": dict(seen), "wall": time.monotonic() - started})


def admin_requests(api: Api, seconds: float) -> list[float]:
    latencies = []
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.token}"},
                      timeout=30) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            answer = client.get("/api/users")
            elapsed = (time.perf_counter() - started) * 1000
            latencies.append(elapsed if answer.status_code == 200 else float("inf"))
            time.sleep(ADMIN_PAUSE)
    return latencies


def own_logins(api: Api, password: str, device: str | None, count: int) -> list[float]:
    """The admin logging in again from its known browser: milliseconds each (inf: refused)."""
    found = []
    body = {"username": "admin", "password": password}
    if device:  # an API from before device tokens gives none (the baseline run)
        body["device_token"] = device
    for _ in range(count):
        started = time.perf_counter()
        answer = httpx.post(f"{api.url}/api/auth/login", timeout=30, json=body)
        found.append((time.perf_counter() - started) * 1000 if answer.status_code == 200
                     else float("inf"))
        time.sleep(0.5)
    return found


def stats(latencies: list[float]) -> dict:
    finite = [x for x in latencies if x != float("inf")]
    return {
        "requests": len(latencies),
        "failed": len(latencies) - len(finite),
        "median_ms": statistics.median(finite),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
    }


def flood_round(api: Api, args: argparse.Namespace, password: str, device: str | None) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=flood, args=(api.url, args.seconds + 2, args.max_logins, queue))
    process.start()
    time.sleep(1)  # the flood at full strength before measuring
    admin = admin_requests(api, args.seconds)
    own = own_logins(api, password, device, args.own_logins)
    found = queue.get(timeout=args.seconds + 60)
    process.join(30)
    statuses = found["statuses"]
    return {"admin": stats(admin), "admin_own_login_ms": own, "flood": {
        "logins": sum(statuses.values()), "by_status": statuses,
        "password_checks": statuses.get(401, 0),
        "per_second": sum(statuses.values()) / found["wall"]}}


def measure(stack, args: argparse.Namespace) -> dict:
    password = stack.runtime.stack.secrets.admin_password
    api = Api(stack)
    device = httpx.post(f"{api.url}/api/auth/login", timeout=30, json={
        "username": "admin", "password": password}).json().get("device_token")
    rounds = []
    try:
        for _ in range(args.rounds):
            quiet = stats(admin_requests(api, args.seconds))
            rounds.append({"no_flood": quiet, "flood": flood_round(api, args, password, device)})
            time.sleep(2)
    finally:
        api.stop()
    return {"rounds": rounds, "summary": summary(rounds)}


def summary(rounds: list[dict]) -> dict:
    """Medians over the rounds."""
    def median(get) -> float:
        return statistics.median(get(r) for r in rounds)

    return {
        "admin_p99_ms_no_flood": median(lambda r: r["no_flood"]["p99_ms"]),
        "admin_p99_ms_flood": median(lambda r: r["flood"]["admin"]["p99_ms"]),
        "admin_median_ms_no_flood": median(lambda r: r["no_flood"]["median_ms"]),
        "admin_median_ms_flood": median(lambda r: r["flood"]["admin"]["median_ms"]),
        "admin_failed_requests_flood": sum(r["flood"]["admin"]["failed"] for r in rounds),
        "flood_logins_per_second": median(lambda r: r["flood"]["flood"]["per_second"]),
        "flood_password_checks_per_round": median(lambda r: r["flood"]["flood"]["password_checks"]),
        "admin_own_login_ms_median": statistics.median(
            x for r in rounds for x in r["flood"]["admin_own_login_ms"]),
        "admin_own_logins_refused": sum(
            x == float("inf") for r in rounds for x in r["flood"]["admin_own_login_ms"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10, help="per phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-logins", type=int, default=5000, help="per flood client and round")
    parser.add_argument("--own-logins", type=int, default=3)
    parser.add_argument("--out", default="flood.json", help="file under bench/api/")
    args = parser.parse_args()
    stack = build_stack("ha")
    try:
        found = measure(stack, args)
    finally:
        stack.destroy()
    p99 = found["summary"]["admin_p99_ms_flood"]
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1m_at_end": os.getloadavg()[0]},
        "clients": CLIENTS, "seconds_per_phase": args.seconds, "rounds": args.rounds,
        **found,
        "goal": {"admin_p99_ms_during_flood_below": GOAL_P99_MS, "met": p99 < GOAL_P99_MS},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (HERE / args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
