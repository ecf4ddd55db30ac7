"""Latency of the dashboard overview under 32 concurrent clients, and its SQL round trips.

A real HA stack (coordinator + standby + pgBouncer) and the management API under uvicorn
are started on free ports. 32 clients (a minimal asyncio HTTP/1.1 client in one process,
one keep-alive connection each) call GET /api/dashboard/overview as fast as they can for
`--seconds` after a 2 s warm-up, in `--rounds` rounds. The peer, measured the same way in the same run, is
GET /api/health (one `SELECT 1`, no authentication): the floor of an API request that
touches the database. The ratio is overview p99 / peer p99.

Overview readings are shared between requests for EXAPG_OVERVIEW_TTL (1 s by default)
and token checks remembered for EXAPG_SESSION_TTL (1 s); the same load is also run with
both off (0) to show the cost of a fresh reading and a token check on every request.
SQL round trips are counted with pg_stat_statements: per request during each load run
(warm-up included), and over `--trips` sequential requests with sharing off (the sampler
is slowed to 300 s so that only requests are counted).

    .venv/bin/python bench/api/run.py [--seconds 10] [--rounds 3] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from exapg.postgres.conn import connect  # noqa: E402
from tests.api.fixtures import start_api, wait_healthy  # noqa: E402
from tests.conftest import build_stack, free_port  # noqa: E402

GOAL_P99_MS = 100.0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


class Connection:
    """A minimal HTTP/1.1 keep-alive client: the load generator shares the machine's two
    cores with the API and PostgreSQL, so it must cost as little CPU as possible."""

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def get(self) -> int:
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def load(url: str, path: str, token: str | None, clients: int, seconds: float) -> dict:
    host, port = url.removeprefix("http://").split(":")
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()
    connections = [Connection(host, int(port), request) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in connections))
    latencies: list[float] = []
    errors = sent = 0

    async def worker(conn: Connection, deadline: float, record: bool) -> None:
        nonlocal errors, sent
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status = await conn.get()
            sent += 1
            elapsed = (time.perf_counter() - started) * 1000
            if status != 200:
                errors += 1
            elif record:
                latencies.append(elapsed)

    warmup = time.perf_counter() + 2
    await asyncio.gather(*(worker(c, warmup, False) for c in connections))
    started = time.perf_counter()
    await asyncio.gather(*(worker(c, started + seconds, True) for c in connections))
    wall = time.perf_counter() - started
    for conn in connections:
        conn.close()
    return {"latencies": latencies, "sent": sent, "errors": errors, "wall": wall}


def summary(rounds: list[dict]) -> dict:
    """Pooled figures over all rounds, and each round's p99 (other work on a shared
    machine shows up as one bad round rather than silently inflating everything)."""
    latencies = [x for r in rounds for x in r["latencies"]]
    wall = sum(r["wall"] for r in rounds)
    sent = sum(r["sent"] for r in rounds)
    round_p99 = [percentile(r["latencies"], 99) for r in rounds]
    return {
        "requests": len(latencies),
        "errors": sum(r["errors"] for r in rounds),
        "throughput_rps": len(latencies) / wall,
        "median_ms": statistics.median(latencies),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
        "p99_ms_per_round": round_p99,
        "p99_ms_median_round": statistics.median(round_p99),
        "sql_round_trips_per_request": sum(r["statements"] for r in rounds) / sent,
    }


def statement_calls(stack) -> float:
    with connect(stack.coordinator) as conn:
        return float(
            conn.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                "WHERE query NOT ILIKE '%pg_stat_statements%'"
            ).fetchone()[0]
        )


def reset_statements(stack) -> None:
    with connect(stack.coordinator) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def sequential_round_trips(stack, url: str, token: str, requests: int) -> float:
    reset_statements(stack)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        for _ in range(requests):
            c.get("/api/dashboard/overview").raise_for_status()
    return statement_calls(stack) / requests


def loaded(stack, url: str, path: str, token: str | None, clients: int, seconds: float) -> dict:
    """A load run, with the SQL statements the API ran per request meanwhile."""
    reset_statements(stack)
    result = asyncio.run(load(url, path, token, clients, seconds))
    result["statements"] = statement_calls(stack)
    return result


class Api:
    def __init__(self, stack, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(stack.settings.state_dir.parent) / f"api-{self.port}.log"
        self.process = start_api({**stack.env, **env}, self.port, self.log)
        wait_healthy(self.url, self.process, self.log)
        self.token = httpx.post(
            f"{self.url}/api/auth/login",
            timeout=30,
            json={
                "username": "admin",
                "password": stack.runtime.stack.secrets.admin_password,
            },
        ).json()["access_token"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def measure(stack, args: argparse.Namespace) -> dict:
    """Rounds alternate between the three loads so that all see the same machine."""
    # the sampler slowed down so that only requests show in pg_stat_statements
    shared = Api(stack, EXAPG_SAMPLE_INTERVAL="300")
    unshared = Api(
        stack, EXAPG_SAMPLE_INTERVAL="300", EXAPG_OVERVIEW_TTL="0", EXAPG_SESSION_TTL="0"
    )
    runs: dict[str, list[dict]] = {"overview": [], "peer_health": [], "overview_unshared": []}
    try:
        trips = sequential_round_trips(stack, unshared.url, unshared.token, args.trips)
        for _ in range(args.rounds):
            for name, api, path, token in (
                ("overview", shared, "/api/dashboard/overview", shared.token),
                ("peer_health", shared, "/api/health", None),
                ("overview_unshared", unshared, "/api/dashboard/overview", unshared.token),
            ):
                runs[name].append(loaded(stack, api.url, path, token, args.clients, args.seconds))
    finally:
        shared.stop()
        unshared.stop()
    return {
        **{name: summary(rounds) for name, rounds in runs.items()},
        "sql_round_trips_per_overview_unshared": trips,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--trips", type=int, default=200)
    args = parser.parse_args()
    stack = build_stack("ha")
    try:
        found = measure(stack, args)
    finally:
        stack.destroy()
    overview, peer = found["overview"], found["peer_health"]
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1m_at_end": os.getloadavg()[0],
        },
        "clients": args.clients,
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        **found,
        "ratio_p99_overview_over_health": overview["p99_ms"] / peer["p99_ms"],
        "ratio_median_overview_over_health": overview["median_ms"] / peer["median_ms"],
        "goal": {
            "p99_ms_below": GOAL_P99_MS,
            "met_pooled": overview["p99_ms"] < GOAL_P99_MS,
            "met_median_round": overview["p99_ms_median_round"] < GOAL_P99_MS,
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (HERE / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
