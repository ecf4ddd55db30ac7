"""Scrape cost of the ExaPG replication exporter against Debian's postgres_exporter.

Both exporters watch the same primary + hot standby (a fresh local ExaPG stack) in one
run. For each: median and p99 of the time to answer GET /metrics over many scrapes
(alternating between the two, so both see the same machine load), statements run on
each server per scrape (pg_stat_statements calls over a separate run of one exporter
at a time), and resident memory after the run.

    .venv/bin/python bench/exporter/run.py [--scrapes 500]

Writes bench/exporter/results.json and results.md beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from exapg.postgres.conn import connect  # noqa: E402
from tests.conftest import build_stack, free_port  # noqa: E402

HERE = Path(__file__).resolve().parent
PEER = "/usr/bin/prometheus-postgres-exporter"
# Both exporters watch a database of their own: the stack's supervised exporter, Prometheus'
# postgres_exporter and the management backend query the stack's database meanwhile.
BENCH_DB = "exapg_bench"


def start_ours(stack, port: int) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "POSTGRES_"))},
        "PRIMARY_HOST": "127.0.0.1", "PRIMARY_PORT": str(stack.coordinator.port),
        "STANDBY_HOSTS": f"127.0.0.1:{stack.standby.port}",
        "POSTGRES_DB": BENCH_DB, "POSTGRES_USER": stack.settings.postgres_user,
        "POSTGRES_PASSWORD_FILE": str(stack.password_file), "POSTGRES_SSLMODE": "disable",
        "EXPORTER_PORT": str(port), "EXPORTER_LISTEN_ADDRESS": "127.0.0.1",
    }
    return subprocess.Popen([sys.executable, "-m", "exapg.exporter"], env=env,
                            stderr=subprocess.DEVNULL)


def start_peer(stack, dsn, port: int) -> subprocess.Popen:
    """One postgres_exporter per server, as it is deployed: version 0.11 fails every
    scrape when DATA_SOURCE_NAME lists two servers (duplicate collector series)."""
    url = (f"postgresql://{stack.settings.postgres_user}:{stack.password}@127.0.0.1:{dsn.port}/"
           f"{BENCH_DB}?sslmode=disable")
    env = {"PATH": os.environ.get("PATH", ""), "DATA_SOURCE_NAME": url}
    return subprocess.Popen([PEER, f"--web.listen-address=127.0.0.1:{port}"], env=env,
                            stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def wait_ready(client: httpx.Client, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.get(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never answered")


def scrape(client: httpx.Client, urls: list[str]) -> float:
    """Time to get /metrics of the pair from every URL of one exporter (one after the
    other, as one Prometheus server scrapes its targets independently: the sum)."""
    total = 0.0
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        total += time.perf_counter() - started
        response.raise_for_status()
    return total


def statements(dsns) -> list[int]:
    """pg_stat_statements calls so far in the benchmark's database on each server (counted
    from the stack's database, so the counting itself is not counted)."""
    counts = []
    for dsn in dsns:
        with connect(dsn) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s)", (BENCH_DB,)).fetchone()
            counts.append(int(row[0]))
    return counts


def create_bench_database(stack) -> None:
    with connect(stack.coordinator) as conn:
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    deadline = time.monotonic() + 30
    with connect(stack.standby) as conn:
        while not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone():
            if time.monotonic() > deadline:
                raise RuntimeError("the benchmark database never reached the standby")
            time.sleep(0.1)


def per_scrape_statements(client, urls, dsns, scrapes: int) -> list[float]:
    for _ in range(5):
        scrape(client, urls)  # connections made, statements prepared
    time.sleep(0.5)
    before = statements(dsns)
    for _ in range(scrapes):
        scrape(client, urls)
    time.sleep(0.5)  # the heartbeat queued after the last scrape
    after = statements(dsns)
    return [(a - b) / scrapes for a, b in zip(after, before, strict=True)]


def rss_mib(procs: list[subprocess.Popen]) -> float:
    total = 0
    for proc in procs:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(times: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(times) * 1000, "p99_ms": percentile(times, 0.99) * 1000,
            "mean_ms": statistics.fmean(times) * 1000}


def run(scrapes: int) -> dict:
    stack = build_stack("ha")
    procs: dict[str, list[subprocess.Popen]] = {}
    try:
        create_bench_database(stack)
        dsns = (stack.coordinator, stack.standby)
        ours, peers = free_port(), [free_port() for _ in dsns]
        procs["exapg"] = [start_ours(stack, ours)]
        procs["postgres_exporter"] = [start_peer(stack, d, p) for d, p in zip(dsns, peers, strict=True)]
        urls = {"exapg": [f"http://127.0.0.1:{ours}/metrics"],
                "postgres_exporter": [f"http://127.0.0.1:{p}/metrics" for p in peers]}
        with httpx.Client(timeout=30) as client:
            for group in urls.values():
                for url in group:
                    wait_ready(client, url)
                for _ in range(20):
                    scrape(client, group)  # warm-up
            times: dict[str, list[float]] = {name: [] for name in urls}
            for _ in range(scrapes):
                for name, group in urls.items():  # alternate: same load for both
                    times[name].append(scrape(client, group))
            counted = {name: per_scrape_statements(client, group, dsns, 100)
                       for name, group in urls.items()}
            sizes = {name: sum(len(client.get(u).content) for u in group)
                     for name, group in urls.items()}
        return {
            "scrapes": scrapes,
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "kernel": platform.release()},
            "peer": subprocess.run([PEER, "--version"], capture_output=True, text=True,
                                   check=False).stderr.splitlines()[0],
            "results": {
                name: {**summary(times[name]),
                       "statements_per_scrape": {"primary": counted[name][0],
                                                 "standby": counted[name][1]},
                       "rss_mib": rss_mib(procs[name]),
                       "processes": len(procs[name]),
                       "response_bytes": sizes[name]}
                for name in urls
            },
        }
    finally:
        for group in procs.values():
            for proc in group:
                proc.terminate()
                proc.wait(timeout=10)
        stack.destroy()


def markdown(data: dict) -> str:
    ours, peer = data["results"]["exapg"], data["results"]["postgres_exporter"]
    rows = [
        "| | ExaPG replication exporter | postgres_exporter (Debian) |",
        "|---|---|---|",
        f"| median scrape | {ours['median_ms']:.2f} ms | {peer['median_ms']:.2f} ms |",
        f"| p99 scrape | {ours['p99_ms']:.2f} ms | {peer['p99_ms']:.2f} ms |",
        f"| statements per scrape, primary | {ours['statements_per_scrape']['primary']:.2f} | "
        f"{peer['statements_per_scrape']['primary']:.2f} |",
        f"| statements per scrape, standby | {ours['statements_per_scrape']['standby']:.2f} | "
        f"{peer['statements_per_scrape']['standby']:.2f} |",
        f"| resident memory | {ours['rss_mib']:.1f} MiB ({ours['processes']} process) | "
        f"{peer['rss_mib']:.1f} MiB ({peer['processes']} processes) |",
        f"| response size | {ours['response_bytes']} B | {peer['response_bytes']} B |",
    ]
    ratio = peer["median_ms"] / ours["median_ms"]
    return "\n".join([
        "# Replication exporter: scrape cost",
        "",
        f"One run of `bench/exporter/run.py`, {data['scrapes']} scrapes of each "
        "exporter, alternating, against the same local primary + hot standby "
        f"({data['machine']['cpus']} CPUs, Python {data['machine']['python']}; peer: "
        f"{data['peer']}).",
        "",
        *rows,
        "",
        f"Median ratio: the peer takes {ratio:.1f}x as long per scrape.",
        "",
        "Scrape time is measured by the client (request sent to body received) over a kept-alive",
        "HTTP connection. postgres_exporter 0.11 fails every scrape when given two servers",
        "(duplicate `pg_scrape_collector_*` series), so it runs as it is deployed, one process",
        "per server; its scrape time is the sum of both, its memory the sum of both processes.",
        "Statements are pg_stat_statements calls on each server divided by the",
        "number of scrapes, counted while only that exporter was scraped; on the primary ours",
        "is the state query plus the heartbeat write, queued after the scrape has answered.",
        "The peer exports general server statistics (pg_settings, pg_stat_database, locks, ...)",
        "besides replication; ours exports replication only, which is its job: the comparison is",
        "of what a Prometheus server pays per scrape of each, not of equal metric sets.",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scrapes", type=int, default=500)
    args = parser.parse_args()
    if not shutil.which(PEER):
        sys.exit(f"{PEER} is not installed (apt-get install prometheus-postgres-exporter)")
    data = run(args.scrapes)
    (HERE / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    (HERE / "results.md").write_text(markdown(data))
    print(markdown(data))


if __name__ == "__main__":
    main()
