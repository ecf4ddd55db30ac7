"""TPC-H at a larger scale factor (default 10): how ExaPG and a stock PostgreSQL 15 grow.

At SF 10 (about 10 GB of raw data; with keys and indexes more than the shared buffers
ExaPG picks on a 24 GiB machine, and the two servers' data together more than its memory)
the balance between memory settings, I/O and parallelism changes. No published answers
exist at SF 10: DuckDB runs the same 22 queries on the same generated data first (in a
database file, memory capped), and both servers' answers are checked against its.

Steps: DuckDB (answers, times) -> both servers loaded once each (stock the plain way,
ExaPG by `exapg sample tpch`) -> both restarted -> one untimed pass on each -> `--repeat`
timed passes, the servers alternating query by query -> EXPLAIN (ANALYZE, BUFFERS) of the
queries ExaPG runs slower than stock, on both, into plans/. Peak memory in use on the machine
(MemTotal - MemAvailable) is sampled every second through each phase. Growth is reported
against results-sf1.json of run.py (x10 data: how many times the time).

    .venv/bin/python bench/tpch/scale.py [--sf 10] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402
from run import both_servers, check, gm, plans_folder, prepare, save_plans, suite, timed_load  # noqa: E402

from exapg.tpch import duck  # noqa: E402
from exapg.tpch.check import render  # noqa: E402
from exapg.tpch.schema import EXAPG, PLAIN  # noqa: E402
from tests.conftest import run_cli  # noqa: E402


class PeakMemory:
    """The most memory in use on the machine while the block runs (sampled every second)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def in_use() -> int:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        kb = int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])
        return kb * 1024

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.in_use())
            self._stop.wait(1)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def as_answer(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """DuckDB's rows in the text form of its reference answers (check.parse_answer)."""
    return "\n".join(["|".join(columns), *("|".join(render(v) for v in row) for row in rows)]) + "\n"


def duckdb_answers(sf: float, texts: dict[int, str], repeat: int, memory_limit: str) -> dict:
    con = duck.connect(threads=os.cpu_count())
    with tempfile.TemporaryDirectory(prefix="exapg-duck-", dir=os.environ.get("TPCH_DUCK_DIR")) as where:
        con.close()
        import duckdb

        con = duckdb.connect(str(Path(where) / "tpch.duckdb"),
                             config={"threads": os.cpu_count(), "memory_limit": memory_limit})
        con.execute(f"LOAD '{duck.extension_path()}'")
        started = time.perf_counter()
        con.execute("CALL dbgen(sf = ?)", [sf])
        generated = time.perf_counter() - started
        answers, times = {}, {}
        for number, text in texts.items():
            samples = []
            for _ in range(max(1, repeat)):
                started = time.perf_counter()
                cursor = con.execute(text)
                rows = cursor.fetchall()
                samples.append(time.perf_counter() - started)
            answers[number] = as_answer([d[0] for d in cursor.description], rows)
            times[number] = statistics.median(samples)
            print(f"[duckdb] Q{number:<2} {times[number]:.3f}s", flush=True)
        con.close()
    return {"generate_seconds": generated, "queries": times, "geometric_mean": gm(times), "answers": answers}


def growth(results: dict, sf1: dict) -> dict:
    """How many times each query's time grew from SF 1, per server."""
    out: dict[str, Any] = {}
    for name in ("stock", "exapg"):
        now, before = results["queries"][name], sf1["queries"][name]
        out[name] = {n: (now[n] / before[str(n)] if now[n] and before.get(str(n)) else None) for n in now}
        g_now, g_before = results["geometric_mean"][name], sf1["geometric_mean"][name]
        out[name + "_geometric_mean"] = g_now / g_before if g_now and g_before else None
        load_before = sf1["load"][name].get("median_total_seconds") or sf1["load"][name]["total_seconds"]
        out[name + "_load"] = results["load"][name]["total_seconds"] / load_before
    return out


def drop_page_cache() -> None:
    """Start cold: write out and drop the kernel's cached file pages (root only)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def alone(env: dict[str, str], stock: Any, url: str, texts: dict[int, str], args: argparse.Namespace,
          answers: dict[int, str]) -> tuple[dict[str, dict[int, float | None]], int]:
    """Each server timed with the other stopped and the page cache dropped first, as on a
    machine of its own: one untimed pass, then the timed ones. Leaves both stopped."""
    servers = {  # name -> (start, connect, stop)
        "exapg": (lambda: check(run_cli("up", env=env, timeout=900)),
                  lambda: psycopg.connect(url, autocommit=True),
                  lambda: check(run_cli("stop", env=env, timeout=900))),
        "stock": (stock.resume, stock.connect, stock.halt),
    }
    medians: dict[str, dict[int, float | None]] = {}
    peak_bytes = 0
    for _, _, stop in servers.values():
        stop()
    for name, (start, connect, stop) in servers.items():
        start()
        with connect() as conn:
            prepare(conn)
            drop_page_cache()
            with PeakMemory() as peak:
                suite({name: conn}, texts, args.sf, 1, log="[warm-up] ", answers=answers)
                medians.update(suite({name: conn}, texts, args.sf, args.repeat, answers=answers))
        peak_bytes = max(peak_bytes, peak.peak)
        stop()
    return medians, peak_bytes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sf", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--duck-memory", default="8GB")
    parser.add_argument("--sf1", default="results-sf1.json", help="run.py's results to compare with (in bench/tpch)")
    parser.add_argument("--alone", action="store_true",
                        help="time each server with the other stopped and the page cache dropped (by default "
                             "they run side by side, alternating query by query, sharing the memory)")
    parser.add_argument("--name", default=None, help="results file name (default results-sf<SF>.json)")
    args = parser.parse_args()
    texts = duck.queries()
    results: dict[str, Any] = {"scale_factor": args.sf, "repeat": args.repeat,
                               "machine": {"cpus": os.cpu_count(),
                                           "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")},
                               "load_average_start": os.getloadavg()}
    with PeakMemory() as peak:
        duck_result = duckdb_answers(args.sf, texts, args.repeat, args.duck_memory)
    answers = duck_result.pop("answers")
    results["duckdb"] = {**duck_result, "peak_memory_bytes": peak.peak}

    with both_servers() as (env, stock, url):
        exapg_conn = psycopg.connect(url, autocommit=True)
        stock_conn = stock.connect()
        results["load"] = {}
        for name, conn, layout in (("stock", stock_conn, PLAIN), ("exapg", exapg_conn, EXAPG)):
            with PeakMemory() as peak:
                results["load"][name] = {**timed_load(conn, args.sf, layout, f"{name}, load"),
                                         "peak_memory_bytes": peak.peak}
        results["load"]["exapg_over_stock_total"] = (
            results["load"]["exapg"]["total_seconds"] / results["load"]["stock"]["total_seconds"])
        sizes = "SELECT pg_database_size(current_database())"
        results["database_bytes"] = {n: c.execute(sizes).fetchone()[0]  # type: ignore[index]
                                     for n, c in (("stock", stock_conn), ("exapg", exapg_conn))}
        exapg_conn.close()
        stock_conn.close()
        if args.alone:
            medians, results["queries_peak_memory_bytes"] = alone(env, stock, url, texts, args, answers)
            results["alone"] = True
        stock.restart()
        check(run_cli("restart", env=env, timeout=900))
        exapg_conn = psycopg.connect(url, autocommit=True)
        stock_conn = stock.connect()
        for conn in (stock_conn, exapg_conn):
            prepare(conn)
        if not args.alone:
            with PeakMemory() as peak:
                suite({"stock": stock_conn, "exapg": exapg_conn}, texts, args.sf, 1, log="[warm-up] ",
                      answers=answers)
                medians = suite({"stock": stock_conn, "exapg": exapg_conn}, texts, args.sf, args.repeat,
                                answers=answers)
            results["queries_peak_memory_bytes"] = peak.peak
        results["queries"] = medians
        results["geometric_mean"] = {n: gm(m) for n, m in medians.items()}
        g = results["geometric_mean"]
        results["speedup_geometric_mean"] = g["stock"] / g["exapg"] if g["stock"] and g["exapg"] else None
        print(f"geometric means: {g}", flush=True)
        # what holds ExaPG back where it is slower than stock
        results["plans_saved_for"] = save_plans({"stock": stock_conn, "exapg": exapg_conn}, texts, medians,
                                                args.sf, below=1.0, folder=plans_folder(args.name))
        sf1 = HERE / args.sf1
        if sf1.exists():
            results["growth_from_sf1"] = {"against": args.sf1, **growth(results, json.loads(sf1.read_text()))}
        results["load_average_end"] = os.getloadavg()
        exapg_conn.close()
        stock_conn.close()
    name = args.name or f"results-sf{args.sf:g}.json"
    (HERE / name).write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"written {HERE / name}")


if __name__ == "__main__":
    main()
