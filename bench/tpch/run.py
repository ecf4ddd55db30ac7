"""TPC-H side by side: ExaPG's local stack against a stock PostgreSQL 15, and DuckDB.

Same binaries, same data (both loaded by `exapg.tpch.load`), same queries, answers
checked on both sides. The stock server is `initdb` with its defaults and gets the plain
layout (one session, B-trees on the keys and dates, VACUUM); ExaPG gets its own layout
(`exapg sample tpch`: tables in date order, BRIN on the dates, COPY FREEZE, several
sessions; tpch.schema.Layout). Loads alternate between the two, `--load-runs` times each,
each in a process of its own (one_load.py), as `exapg sample tpch` makes it.
ExaPG also gets the plain layout in schema tpch_plain, to run beside its own: what the
layout buys. After the loads both servers are restarted and every query runs once
untimed on each. Queries then alternate between the two servers (one query on one, then
on the other), `--repeat` times each; the median is kept. Then each analytic setting of
ExaPG is set back to the stock value in its own ExaPG session, run side by side with a
session of ExaPG's configuration: what that setting buys; and ExaPG is restarted with
the stock shared_buffers and compared with stock again. Also recorded: COPY against multi-row
INSERT batches, DuckDB on the same data, and pgBouncer against direct connections with
short-lived clients (pgbench -C).

    .venv/bin/python bench/tpch/run.py [--sf 1] [--repeat 3] [--clients 200]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import psycopg  # noqa: E402
from cpu import Meter  # noqa: E402
from psycopg import sql  # noqa: E402

from exapg.postgres import hugepages  # noqa: E402
from exapg.postgres.binaries import find_binaries  # noqa: E402
from exapg.proc import ServiceUser, run  # noqa: E402
from exapg.tpch import duck  # noqa: E402
from exapg.tpch.check import compare  # noqa: E402
from exapg.tpch.load import LoadedData, copy_rate, layout_named, load, load_sessions  # noqa: E402
from exapg.tpch.run import geometric_mean  # noqa: E402
from exapg.tpch.schema import EXAPG, PLAIN, Layout  # noqa: E402
from tests.conftest import free_port, new_state_dir, run_cli, stack_environment  # noqa: E402

RESULT = "load result: "  # one_load.py's last line: this, then the figures as JSON
TIMEOUT_MS = int(os.environ.get("TPCH_TIMEOUT_MS", "300000"))
# Settings an ExaPG session can set back to the stock value (shared_buffers cannot:
# whatever the ablations do not explain is shared_buffers and the rest of the file).
ABLATIONS = {
    "work_mem": ("work_mem",),
    "parallel workers per query": ("max_parallel_workers_per_gather",),
    "random_page_cost": ("random_page_cost",),
    "effective_cache_size": ("effective_cache_size",),
    "jit thresholds": ("jit_above_cost", "jit_inline_above_cost", "jit_optimize_above_cost"),
    "parallel plan costs": ("parallel_setup_cost", "parallel_tuple_cost"),
}


def timed_load(conn: psycopg.Connection, sf: float, layout: Layout, label: str) -> dict:
    """One load into `conn`'s database, in a process of its own (one_load.py), as `exapg sample
    tpch` makes it. DuckDB's dbgen is at times slow (about 3 s and 8 CPU seconds more at
    SF 1), on either side, in a fresh process as well: results.md's column without
    generation leaves that out."""
    if layout_of(layout.name, layout.sessions) != layout:
        raise ValueError(f"one_load.py rebuilds a layout from its name and sessions only: {layout}")
    child = subprocess.Popen(
        [sys.executable, str(HERE / "one_load.py"), conn.info.dsn, str(sf), layout.name, str(layout.sessions), label],
        env={**os.environ, **({"PGPASSWORD": conn.info.password} if conn.info.password else {})},
        stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    last = ""
    for line in child.stdout:
        if not line.startswith(RESULT):
            print(line, end="", flush=True)
        last = line
    if child.wait() != 0 or not last.startswith(RESULT):
        raise RuntimeError(f"[{label}] the load failed (exit {child.returncode})")
    return json.loads(last[len(RESULT):])


def layout_of(name: str, sessions: int) -> Layout:
    """The layout one_load.py loads with: a named one, with its sessions as given."""
    return replace(layout_named(name), sessions=sessions)


def measured_load(conn: psycopg.Connection, sf: float, layout: Layout, label: str) -> dict:
    """A load in this process, and its figures."""
    started = time.perf_counter()
    data: LoadedData = load(conn, sf, layout=layout, stage=lambda text: print(f"[{label}] {text}", flush=True))
    total = time.perf_counter() - started
    # copy_seconds: the tables' copy times added up (sessions overlap); copy_wall_seconds:
    # the copy phase as it took, which the rate is over; index and analyze seconds: the
    # builds left once the last table is in (the others' ran during the copy)
    copy_seconds = sum(v for k, v in data.seconds.items() if k in data.rows)
    phases = data.seconds["generate"] + data.seconds["copy"] + data.seconds["indexes"] + data.seconds["analyze"]
    result = {"layout": layout.name, "total_seconds": total, "copy_seconds": copy_seconds,
              "generate_seconds": data.seconds["generate"], "copy_wall_seconds": data.seconds["copy"],
              "rows": sum(data.rows.values()), "copy_rows_per_second": copy_rate(data),
              "index_seconds": data.seconds["indexes"], "analyze_seconds": data.seconds["analyze"],
              "other_seconds": total - phases,  # setting up, swapping the schema in, CHECKPOINT
              "table_seconds": {k: v for k, v in data.seconds.items() if k in data.rows}}
    print(f"[{label}] loaded: {result}", flush=True)
    return result


def standby_behind(conn: psycopg.Connection, timeout: float = 600.0) -> float:
    """Seconds from now until every standby of `conn`'s server has replayed the WAL written
    until now (a load just ended: how far behind it the standby was)."""
    started = time.perf_counter()
    target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    while time.perf_counter() - started < timeout:
        behind = conn.execute("SELECT count(*) FILTER (WHERE replay_lsn IS NULL OR replay_lsn < %s::pg_lsn), count(*) "
                              "FROM pg_stat_replication", (target,)).fetchone()
        if behind[1] == 0:
            raise RuntimeError("no standby streams from this server")
        if behind[0] == 0:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError(f"the standby did not replay the load's WAL within {timeout:.0f} s")


def median_load(runs: list[dict]) -> dict:
    return {f"median_{key}": statistics.median(run[key] for run in runs)
            for key in ("total_seconds", "generate_seconds", "copy_seconds", "copy_wall_seconds", "index_seconds",
                        "analyze_seconds")}


def layout_against_plain(url: str, exapg_conn: psycopg.Connection, texts: dict[int, str],
                         args: argparse.Namespace) -> dict:
    """ExaPG's own layout (schema tpch) against the plain one (tpch_plain) on the same server,
    side by side, query by query."""
    plain = psycopg.connect(url, autocommit=True)
    prepare(plain)
    plain.execute("SET search_path = tpch_plain")
    try:
        medians = suite({"exapg": exapg_conn, "plain layout": plain}, texts, args.sf, args.repeat,
                        log="[layout] ")
    finally:
        plain.close()
    g = {name: gm(m) for name, m in medians.items()}
    return {"geometric_mean": g, "queries": medians,
            "layout_buys": g["plain layout"] / g["exapg"] if g["exapg"] and g["plain layout"] else None}


def plans_folder(name: str | None) -> Path:
    """Where a run's plans go: plans/ for the default results file, plans/<name> for a results
    file named in bench/tpch (less its "results-"), <name>-plans beside one named elsewhere;
    a run under another name never replaces the plans of the default one."""
    if name is None:
        return HERE / "plans"
    results = HERE / name
    if results.parent == HERE:
        return HERE / "plans" / results.stem.removeprefix("results-")
    return results.with_name(f"{results.stem}-plans")


def save_plans(conns: dict[str, psycopg.Connection], texts: dict[int, str], medians: dict[str, dict],
               sf: float, below: float, folder: Path) -> list[int]:
    """EXPLAIN (ANALYZE, BUFFERS) of each query ExaPG runs less than `below` times faster than
    stock, on both servers, into `folder` (plans_folder): what holds the geometric mean back."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"sf{sf:g}-q*.txt"):
        old.unlink()
    slow = [n for n in texts if medians["stock"][n] and medians["exapg"][n]
            and medians["stock"][n] / medians["exapg"][n] < below]
    for number in slow:
        for name, conn in conns.items():
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, SETTINGS) " + texts[number]).fetchall()
            took = medians[name][number] * 1000
            header = f"-- TPC-H Q{number}, SF {sf:g}, {name} (median {took:,.0f} ms in the bench run)\n"
            (folder / f"sf{sf:g}-q{number:02d}-{name}.txt").write_text(header + "\n".join(r[0] for r in plan) + "\n")
    return slow


def check(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if result.returncode != 0:
        raise SystemExit(f"exapg failed: {result.stderr.strip()}")
    return result


class StockServer:
    """initdb defaults (the same encoding and locale as ExaPG's nodes, UTF8 and C.UTF-8, so
    text compares alike; no data checksums, which ExaPG pays for), trust on its own socket
    and 127.0.0.1 only: a throwaway peer."""

    def __init__(self) -> None:
        self.root = new_state_dir()
        self.user = ServiceUser.resolve("postgres")
        self.user.make_dir(self.root, 0o700)
        self.bins = find_binaries()
        self.port = free_port()
        self.datadir = self.root / "data"

    def start(self) -> None:
        run([str(self.bins("initdb")), "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8"],
            timeout=120, user=self.user)
        self.resume()

    def resume(self) -> None:
        """Start the server start() made (again, after halt())."""
        run([str(self.bins("pg_ctl")), "start", "-D", str(self.datadir), "-w", "-l", str(self.root / "log"),
             "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"], timeout=300, user=self.user)

    def halt(self) -> None:
        """Stop, keeping the data (stop() removes it)."""
        run([str(self.bins("pg_ctl")), "stop", "-D", str(self.datadir), "-m", "fast", "-w"],
            timeout=300, user=self.user)

    def restart(self) -> None:
        run([str(self.bins("pg_ctl")), "restart", "-D", str(self.datadir), "-w", "-m", "fast", "-l",
             str(self.root / "log"), "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"],
            timeout=300, user=self.user)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True)

    def stop(self) -> None:
        try:
            self.halt()
        except Exception as exc:
            print(f"stopping the stock server: {exc}")
        subprocess.run(["rm", "-rf", str(self.root.parent)], check=False)


@contextlib.contextmanager
def both_servers(mode: str = "standalone", **env_extra: str) -> Iterator[tuple[dict[str, str], StockServer, str]]:
    """An ExaPG stack of `mode` with the whole machine (as `make up` gives it) and a stock
    server, both running; yields the stack's environment, the stock server and ExaPG's URL.
    Both are removed at the end. In mode ha the standby streams from the primary on this
    same machine: it replays the load's WAL on the cores the load uses."""
    env = stack_environment(new_state_dir(), **env_extra)
    del env["EXAPG_MEMORY_LIMIT"]
    stock = StockServer()
    try:
        check(run_cli("up", "--mode", mode, env=env, timeout=600))
        stock.start()
        creds = json.loads(check(run_cli("credentials", "--json", env=env)).stdout)
        yield env, stock, creds["coordinator_url"]
    finally:
        stock.stop()
        run_cli("down", "--volumes", env=env, timeout=600)


def prepare(conn: psycopg.Connection) -> None:
    conn.execute("SET search_path = tpch")
    conn.execute(f"SET statement_timeout = {TIMEOUT_MS}")


def timed_query(conn: psycopg.Connection, text: str) -> tuple[float | None, list[tuple]]:
    started = time.perf_counter()
    try:
        rows = conn.execute(text).fetchall()
    except psycopg.errors.QueryCanceled:
        return None, []
    return time.perf_counter() - started, rows


def suite(conns: dict[str, psycopg.Connection], texts: dict[int, str], sf: float, repeat: int,
          log: str = "", answers: dict[int, str] | None = None) -> dict[str, dict[int, float | None]]:
    """Median seconds per query and connection; None for a timeout; raises on a wrong answer
    (checked against `answers`, by default DuckDB's reference answers where it has them)."""
    if answers is None and duck.has_answers(sf):
        answers = {number: duck.answer(sf, number) or "" for number in texts}
    medians: dict[str, dict[int, float | None]] = {name: {} for name in conns}
    for number, text in texts.items():
        samples: dict[str, list[float]] = {name: [] for name in conns}
        for attempt in range(repeat):
            for name, conn in conns.items():
                if samples[name] is None:
                    continue
                seconds, rows = timed_query(conn, text)
                if seconds is None:
                    samples[name] = None  # type: ignore[assignment]
                    continue
                if attempt == 0 and answers is not None:
                    verdict = compare(rows, answers[number])
                    if not verdict.ok:
                        raise SystemExit(f"{name} Q{number}: wrong answer: {verdict.detail}")
                samples[name].append(seconds)
        for name in conns:
            medians[name][number] = statistics.median(samples[name]) if samples[name] else None
        print(f"{log}Q{number:<2} " + "  ".join(
            f"{n}={'timeout' if medians[n][number] is None else f'{medians[n][number]:.3f}s'}" for n in conns),
            flush=True)
    return medians


def gm(values: dict[int, float | None]) -> float | None:
    if any(v is None for v in values.values()):
        return None
    return geometric_mean([v for v in values.values() if v is not None])


def duckdb_suite(sf: float, texts: dict[int, str], repeat: int) -> dict[int, float]:
    con = duck.connect(threads=os.cpu_count())
    con.execute("CALL dbgen(sf = ?)", [sf])
    out = {}
    for number, text in texts.items():
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            con.execute(text).fetchall()
            times.append(time.perf_counter() - started)
        out[number] = statistics.median(times)
    con.close()
    return out


def insert_against_copy(conn: psycopg.Connection, rows_wanted: int = 200_000, batch: int = 1000) -> dict:
    """The same lineitem rows loaded with COPY and with multi-row INSERT batches."""
    columns = [r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'tpch.lineitem'::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum").fetchall()]
    data = conn.execute(f"SELECT * FROM tpch.lineitem LIMIT {rows_wanted}").fetchall()
    result = {}
    for method in ("copy", "insert"):
        conn.execute("DROP TABLE IF EXISTS public.bench_lineitem")
        conn.execute("CREATE TABLE public.bench_lineitem (LIKE tpch.lineitem)")
        started = time.perf_counter()
        with conn.transaction():
            if method == "copy":
                target = f"COPY public.bench_lineitem ({', '.join(columns)}) FROM STDIN"
                with conn.cursor() as cur, cur.copy(target) as cp:
                    for row in data:
                        cp.write_row(row)
            else:
                placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
                with conn.cursor() as cur:
                    for start in range(0, len(data), batch):
                        chunk = data[start:start + batch]
                        statement = f"INSERT INTO public.bench_lineitem VALUES {', '.join([placeholders] * len(chunk))}"
                        cur.execute(statement, [v for row in chunk for v in row])
        seconds = time.perf_counter() - started
        result[method] = {"rows": len(data), "seconds": seconds, "rows_per_second": len(data) / seconds}
    conn.execute("DROP TABLE public.bench_lineitem")
    result["batch_rows"] = batch
    result["copy_over_insert"] = result["copy"]["rows_per_second"] / result["insert"]["rows_per_second"]
    return result


def pgbouncer_against_direct(env: dict[str, str], clients: int, seconds: int, runs: int) -> dict:
    samples: dict[str, list[float]] = {"pgbouncer": [], "direct": []}
    failures: dict[str, list[int]] = {"pgbouncer": [], "direct": []}
    errors: dict[str, str | None] = {"pgbouncer": None, "direct": None}
    for _ in range(runs):
        out = check(run_cli("bench", "pgbench", "--clients", str(clients), "--time", str(seconds), "--connect",
                            "--json", env=env, timeout=seconds * 4 + 300))
        for row in json.loads(out.stdout):
            samples[row["target"]].append(row["tps"] or 0.0)
            failures[row["target"]].append(row["failed"])
            errors[row["target"]] = errors[row["target"]] or row["first_error"]
    med = {k: statistics.median(v) for k, v in samples.items()}
    return {"clients": clients, "seconds": seconds, "runs": runs, "connect_per_transaction": True,
            "max_client_conn": int(env["MAX_CLIENT_CONN"]), "default_pool_size": 20,
            "median_tps": med, "samples_tps": samples, "failed_transactions": failures, "first_error": errors,
            "pgbouncer_over_direct": med["pgbouncer"] / med["direct"] if med["direct"] else None}


def ablations(exapg_conn: psycopg.Connection, stock_conn: psycopg.Connection, url: str,
              texts: dict[int, str], args: argparse.Namespace) -> dict[str, dict]:
    """One ExaPG session per group of settings set back to the stock value, all run side by side
    with a session of ExaPG's own configuration, query by query, as the main comparison."""
    names = [s for group in ABLATIONS.values() for s in group]
    stock_values = dict(stock_conn.execute(
        "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)", (names,)).fetchall())
    conns = {"exapg": exapg_conn}
    for label, settings in ABLATIONS.items():
        conn = psycopg.connect(url, autocommit=True)
        prepare(conn)
        for setting in settings:
            conn.execute("SELECT set_config(%s, %s, false)", (setting, stock_values[setting]))
        conns[label] = conn
    medians = suite(conns, texts, args.sf, args.repeat, log="[ablations] ")
    for conn in list(conns.values())[1:]:
        conn.close()
    base = gm(medians["exapg"])
    return {label: {"stock_values": {s: stock_values[s] for s in settings}, "geometric_mean": gm(medians[label]),
                    "exapg_geometric_mean": base, "queries": medians[label], "exapg_queries": medians["exapg"]}
            for label, settings in ABLATIONS.items()}


def restarted_against_stock(env: dict[str, str], exapg_conn: psycopg.Connection, stock_conn: psycopg.Connection,
                            texts: dict[int, str], args: argparse.Namespace, *, label: str,
                            shared_buffers: str | None = None, huge_pages: str | None = None) -> dict:
    """What needs a restart: ExaPG restarted with the stock shared_buffers, or without huge
    pages (EXAPG_HUGE_PAGES=off: nothing reserved), against stock; then restarted as it was."""
    changed = {**env, **({"EXAPG_HUGE_PAGES": huge_pages} if huge_pages else {})}
    if shared_buffers:
        exapg_conn.execute("SELECT set_config('statement_timeout', '0', false)")
        exapg_conn.execute(sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(sql.Literal(shared_buffers)))
    exapg_conn.close()
    check(run_cli("restart", env=changed, timeout=600))
    creds = json.loads(check(run_cli("credentials", "--json", env=env)).stdout)
    conn = psycopg.connect(creds["coordinator_url"], autocommit=True)
    try:
        exapg_huge_kb = hugepages.mapped_kb(postmaster_pid(conn))
        prepare(conn)
        suite({"exapg": conn}, texts, args.sf, 1, log=f"[warm-up, {label}] ")
        medians = suite({"stock": stock_conn, "exapg": conn}, texts, args.sf, args.repeat, log=f"[{label}] ")
        if shared_buffers:
            conn.execute("ALTER SYSTEM RESET shared_buffers")
    finally:
        conn.close()
    check(run_cli("restart", env=env, timeout=600))
    g = {name: gm(m) for name, m in medians.items()}
    return {"shared_buffers": shared_buffers, "huge_pages": huge_pages, "exapg_hugetlb_kb": exapg_huge_kb,
            "geometric_mean": g, "queries": medians,
            "speedup_geometric_mean": g["stock"] / g["exapg"] if g["stock"] and g["exapg"] else None}


def postmaster_pid(conn: psycopg.Connection) -> int:
    datadir = conn.execute("SHOW data_directory").fetchone()[0]
    return int(Path(datadir, "postmaster.pid").read_text().split()[0])


def processes(env: dict[str, str], stock_conn: psycopg.Connection) -> tuple[dict[str, int], dict[str, int]]:
    """The postmasters of the stock server and of ExaPG's nodes (name -> pid), and the
    stack's other services (name -> pid)."""
    status = json.loads(check(run_cli("status", "--json", env=env)).stdout)
    servers = {"stock": postmaster_pid(stock_conn)}
    servers.update({"exapg" if s["role"] == "coordinator" else s["name"]: s["pid"] for s in status
                    if s["role"] in ("coordinator", "standby")})
    return servers, {s["name"]: s["pid"] for s in status if s["role"] not in ("coordinator", "standby") and s["pid"]}


def queries_and_ablations(results: dict, env: dict[str, str], stock: StockServer, url: str,
                          exapg_conn: psycopg.Connection, stock_conn: psycopg.Connection,
                          texts: dict[int, str], args: argparse.Namespace) -> None:
    """Everything after the loads: the side-by-side queries, the layout, the ablations, the
    restarts, DuckDB, COPY against INSERT and pgBouncer."""
    # The query phase starts from servers restarted after the load, as a deployment that
    # loaded yesterday and is queried today: no load connection, no buffers of the load.
    exapg_conn.close()
    stock_conn.close()
    stock.restart()
    check(run_cli("restart", env=env, timeout=600))
    exapg_conn = psycopg.connect(url, autocommit=True)
    stock_conn = stock.connect()
    settings_sql = ("SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s)")
    names = ["shared_buffers", "work_mem", "effective_cache_size", "jit_above_cost", "random_page_cost",
             "max_parallel_workers_per_gather", "max_parallel_workers", "default_statistics_target"]
    names += ["huge_pages", "parallel_setup_cost", "parallel_tuple_cost"]
    results["settings"] = {n: dict(c.execute(settings_sql, (names,)).fetchall())
                           for n, c in (("stock", stock_conn), ("exapg", exapg_conn))}
    # the stock server maps ordinary pages: no pool is reserved for it, as on a stock machine
    results["hugetlb_kb"] = {n: hugepages.mapped_kb(postmaster_pid(c))
                             for n, c in (("stock", stock_conn), ("exapg", exapg_conn))}
    print(f"huge page mappings (kB): {results['hugetlb_kb']}", flush=True)
    for conn in (stock_conn, exapg_conn):
        prepare(conn)
    # one untimed pass of every query on each: caches warm on both sides
    suite({"stock": stock_conn, "exapg": exapg_conn}, texts, args.sf, 1, log="[warm-up] ")

    medians = suite({"stock": stock_conn, "exapg": exapg_conn}, texts, args.sf, args.repeat)
    results["queries"] = medians
    results["geometric_mean"] = {n: gm(m) for n, m in medians.items()}
    if all(results["geometric_mean"].values()):  # type: ignore[union-attr]
        g = results["geometric_mean"]
        results["speedup_geometric_mean"] = g["stock"] / g["exapg"]  # type: ignore[index]
    print(f"geometric means: {results['geometric_mean']}", flush=True)

    results["plans_saved_for"] = save_plans({"stock": stock_conn, "exapg": exapg_conn}, texts, medians,
                                            args.sf, below=2.0, folder=plans_folder(args.name))
    results["layout"] = layout_against_plain(url, exapg_conn, texts, args)
    print(f"layout: {results['layout']['geometric_mean']}", flush=True)
    results["ablations"] = ablations(exapg_conn, stock_conn, url, texts, args)
    stock_buffers = stock_conn.execute("SHOW shared_buffers").fetchone()[0]
    results["shared_buffers"] = restarted_against_stock(
        env, exapg_conn, stock_conn, texts, args, label="small buffers", shared_buffers=stock_buffers)
    exapg_conn = psycopg.connect(url, autocommit=True)
    results["huge_pages"] = restarted_against_stock(
        env, exapg_conn, stock_conn, texts, args, label="no huge pages", huge_pages="off")
    exapg_conn = psycopg.connect(url, autocommit=True)
    prepare(exapg_conn)

    d = duckdb_suite(args.sf, texts, args.repeat)
    results["duckdb"] = {"queries": d, "geometric_mean": gm(d)}  # type: ignore[arg-type]
    if results["geometric_mean"]["exapg"]:  # type: ignore[index]
        results["duckdb"]["exapg_over_duckdb"] = results["geometric_mean"]["exapg"] / gm(d)  # type: ignore[index,operator]
    results["copy_against_insert"] = insert_against_copy(exapg_conn)
    print(f"copy/insert: {results['copy_against_insert']}", flush=True)
    exapg_conn.close()
    stock_conn.close()
    results["pgbouncer"] = pgbouncer_against_direct(env, args.clients, args.pgbench_seconds, args.pgbench_runs)
    print(f"pgbouncer: {results['pgbouncer']['median_tps']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--pgbench-runs", type=int, default=3)
    parser.add_argument("--load-runs", type=int, default=3, help="loads of each server, alternating")
    parser.add_argument("--name", default=None, help="results file name (default results-sf<SF>.json)")
    parser.add_argument("--loads-only", action="store_true", help="only the alternating loads (a quieter re-run)")
    parser.add_argument("--exapg-sessions", type=int, default=None,
                        help="sessions ExaPG's load uses (default: its layout's, capped by the CPUs)")
    parser.add_argument("--mode", choices=("standalone", "ha"), default="standalone",
                        help="ExaPG's mode: ha adds the streaming standby, on this machine too")
    args = parser.parse_args()

    texts = duck.queries()
    results: dict[str, object] = {"scale_factor": args.sf, "repeat": args.repeat, "load_average_start": os.getloadavg(),
                                  "machine": {"cpus": os.cpu_count(),
                                              "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")}}
    layout = replace(EXAPG, sessions=args.exapg_sessions) if args.exapg_sessions else EXAPG
    results["exapg_load_sessions"] = load_sessions(layout)
    results["exapg_copy_format"] = layout.copy_format
    results["exapg_builds_during_copy"] = True  # load.Builds: a table's builds start once it is in
    results["exapg_mode"] = args.mode
    with both_servers(args.mode, MAX_CLIENT_CONN=str(args.clients + 50)) as (env, stock, url):
        exapg_conn = psycopg.connect(url, autocommit=True)
        stock_conn = stock.connect()
        # Loads alternate (stock, ExaPG, stock, ...): noise hits both. Stock gets the plain
        # layout a careful user of a stock server would make; ExaPG its own (schema.Layout).
        loads: dict[str, list[dict]] = {"stock": [], "exapg": []}
        servers, services = processes(env, stock_conn)
        for attempt in range(args.load_runs):
            for name, conn, chosen in (("stock", stock_conn, PLAIN), ("exapg", exapg_conn, layout)):
                meter = Meter(servers, services)
                loads[name].append(timed_load(conn, args.sf, chosen, f"{name}, load {attempt + 1}"))
                loads[name][-1]["cpu_seconds"] = meter.used()
                if name == "exapg" and args.mode == "ha":
                    loads[name][-1]["standby_behind_seconds"] = standby_behind(conn)
        results["load"] = {name: {**runs[-1], **median_load(runs), "runs": runs} for name, runs in loads.items()}
        results["load"]["exapg_over_stock_total"] = (  # type: ignore[index]
            results["load"]["exapg"]["median_total_seconds"] / results["load"]["stock"]["median_total_seconds"])
        # ExaPG with the plain layout, beside its own in another schema: what the layout buys
        exapg_conn.execute("ALTER SCHEMA tpch RENAME TO tpch_exapg")
        results["load_exapg_plain_layout"] = timed_load(exapg_conn, args.sf, PLAIN, "exapg, plain layout")
        exapg_conn.execute("ALTER SCHEMA tpch RENAME TO tpch_plain")
        exapg_conn.execute("ALTER SCHEMA tpch_exapg RENAME TO tpch")
        if not args.loads_only:
            queries_and_ablations(results, env, stock, url, exapg_conn, stock_conn, texts, args)
    results["load_average_end"] = os.getloadavg()
    name = args.name or f"results-sf{args.sf:g}.json"
    (HERE / name).write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"written {HERE / name}")


if __name__ == "__main__":
    main()
