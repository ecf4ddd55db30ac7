"""Render bench/tpch/results.md from results-sf<SF>.json (written by run.py).

    .venv/bin/python bench/tpch/report.py [results-sf1.json]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL = 2.0  # geometric mean of the 22 queries against stock


def ms(value: float | None) -> str:
    return "timeout" if value is None else f"{value * 1000:,.0f}"


def main() -> None:
    source = HERE / (sys.argv[1] if len(sys.argv) > 1 else "results-sf1.json")
    r = json.loads(source.read_text())
    gm, stock, exapg = r["geometric_mean"], r["queries"]["stock"], r["queries"]["exapg"]
    duck = r["duckdb"]
    lines = [
        f"# TPC-H at scale factor {r['scale_factor']:g}: ExaPG against a stock PostgreSQL 15 and DuckDB",
        "",
        f"Machine: {r['machine']['cpus']} cores, {r['machine']['memory_bytes'] / 1024**3:.0f} GiB. "
        f"Produced by `bench/tpch/run.py` ({source.name}); both servers restarted after the load and every "
        f"query run once untimed on each, then medians of {r['repeat']} runs per query, "
        "the two servers alternating query by query, every answer checked against DuckDB's reference "
        "answers on both sides. Stock = the same PostgreSQL 15 binaries, `initdb` defaults (UTF8, C.UTF-8), "
        "the same data loaded the plain way (`exapg sample tpch --layout plain`: rows as generated, B-tree "
        "indexes on the keys and dates, VACUUM). ExaPG = `exapg up --mode standalone` with the tuning "
        "`exapg.conf` derives from this machine, loaded by `exapg sample tpch` (its own layout: fact tables "
        "in date order, BRIN on the dates, COPY FREEZE, covering indexes on lineitem; see docs/tpch.md).",
        "",
        *([f"**Conditions of this run:** {r['note']}", ""] if r.get("note") else []),
        "## Geometric mean of the 22 queries",
        "",
        "| | geometric mean | against stock |",
        "|---|---:|---:|",
        f"| stock PostgreSQL 15 | {ms(gm['stock'])} ms | 1.00x |",
        f"| ExaPG | {ms(gm['exapg'])} ms | **{r.get('speedup_geometric_mean', 0):.2f}x faster** |",
        f"| DuckDB (in memory, same data) | {ms(duck['geometric_mean'])} ms | "
        f"{gm['stock'] / duck['geometric_mean']:.1f}x faster "
        f"(ExaPG is {duck.get('exapg_over_duckdb', 0):.1f}x slower than DuckDB) |",
        "",
        "## Per query (ms)",
        "",
        "| query | stock | ExaPG | stock / ExaPG | DuckDB |",
        "|---|---:|---:|---:|---:|",
    ]
    for number in sorted(stock, key=int):
        s, e, d = stock[number], exapg[number], duck["queries"][number]
        ratio = f"{s / e:.2f}" if s and e else "-"
        lines.append(f"| Q{number} | {ms(s)} | {ms(e)} | {ratio} | {ms(d)} |")
    lines += other_runs(source, r)
    even = [f"Q{n}" for n in sorted(stock, key=int) if stock[n] and exapg[n] and stock[n] / exapg[n] < 1.1]
    speedup = r.get("speedup_geometric_mean", 0)
    slower = [q for q in stock if stock[q] and exapg[q] and exapg[q] > stock[q]]
    lines += [
        "",
        f"**Goal: at least {GOAL:.1f}x, and no query slower than stock. Geometric mean "
        f"{'met' if speedup >= GOAL else 'not met'}: {speedup:.2f}x; slower than stock: "
        f"{', '.join(f'Q{q} ({stock[q] / exapg[q]:.2f}x)' for q in slower) or 'none'}.** "
        f"{len(even)} of 22 queries run within 10% of stock ({', '.join(even) or 'none'}). The tables below "
        "say what the layout and each setting buy; none of them changes how fast an expression is evaluated "
        "once the data is in memory on both servers.",
    ]
    lines += plans_rows(r)
    lines += layout_rows(r)
    lines += [
        "",
        "## What each setting buys",
        "",
        "Each row is an ExaPG session with one group of settings set back to the stock value (the rest "
        "of ExaPG's configuration kept), run side by side with a session of ExaPG's own configuration, "
        f"query by query, medians of {r['repeat']} runs. Above 1.00x the setting helps: that is how much "
        "slower ExaPG gets without it.",
        "",
        "| set back to stock | stock value | geometric mean | ExaPG side by side | ExaPG is faster by |",
        "|---|---|---:|---:|---:|",
    ]
    for label, a in r["ablations"].items():
        values = ", ".join(f"{k}={v}" for k, v in a["stock_values"].items())
        base = a["exapg_geometric_mean"]
        change = a["geometric_mean"] / base if a["geometric_mean"] and base else None
        lines.append(f"| {label} | {values} | {ms(a['geometric_mean'])} ms | {ms(base)} ms | "
                     f"{'-' if change is None else f'{change:.2f}x'} |")
    lines += restart_rows(r)
    settings = r["settings"]
    lines += [
        "",
        "Settings of the two servers:",
        "",
        "| setting | stock | ExaPG |",
        "|---|---|---|",
        *[f"| {k} | {settings['stock'].get(k, '')} | {settings['exapg'].get(k, '')} |"
          for k in sorted(settings["exapg"])],
    ]
    ci = r["copy_against_insert"]
    lines += load_rows(r)
    variants = [(path, json.loads(path.read_text())) for path in sorted(HERE.glob(f"{source.stem}-loads-*.json"))]
    lines += load_variants(variants)
    lines += load_cpu(variants)
    lines += [
        "",
        f"The same {ci['copy']['rows']:,} lineitem rows into an empty table, one transaction each way: COPY "
        f"{ci['copy']['rows_per_second']:,.0f} rows/s, multi-row INSERT in batches of {ci['batch_rows']} rows "
        f"{ci['insert']['rows_per_second']:,.0f} rows/s: **COPY is {ci['copy_over_insert']:.1f}x faster**.",
    ]
    pb = r["pgbouncer"]
    lines += [
        "",
        "## pgBouncer with short-lived clients",
        "",
        f"`exapg bench pgbench --clients {pb['clients']} --time {pb['seconds']} --connect` "
        f"(a new connection per transaction, SCRAM each time), medians of {pb['runs']} runs:",
        "",
        "| target | transactions/s | failed transactions | first error |",
        "|---|---:|---:|---|",
        *[f"| {t} | {pb['median_tps'][t]:,.1f} | {sum(pb['failed_transactions'][t])} | "
          f"{(pb['first_error'][t] or '').replace('|', '/')} |" for t in ("pgbouncer", "direct")],
        "",
        f"Through pgBouncer: **{pb['pgbouncer_over_direct']:.2f}x the direct rate**. Directly, "
        f"PostgreSQL's `max_connections` turns part of the {pb['clients']} clients away (\"too many clients\"; "
        "pgbench ends those clients and goes on with the rest); pgBouncer (`MAX_CLIENT_CONN` raised to "
        f"{pb.get('max_client_conn', pb['clients'] + 50)} for this run) queues them onto its pool of "
        f"{pb.get('default_pool_size', 20)} server connections.",
        "",
    ]
    (HERE / "results.md").write_text("\n".join(lines))
    print(f"written {HERE / 'results.md'}")


def plans_rows(r: dict) -> list[str]:
    slow = r.get("plans_saved_for")
    if slow is None:
        return []
    if not slow:
        return ["", "Every query runs at least 2x faster than stock."]
    sf = f"{r['scale_factor']:g}"
    return ["", f"Queries under 2x: {', '.join(f'Q{n}' for n in slow)}. Their plans on both servers "
            f"(`EXPLAIN (ANALYZE, BUFFERS, SETTINGS)`, taken after the timed runs) are in "
            f"[`plans/`](plans/) as `sf{sf}-qNN-stock.txt` and `sf{sf}-qNN-exapg.txt`."]


def layout_rows(r: dict) -> list[str]:
    """ExaPG's layout against the plain one on the same ExaPG server."""
    lay = r.get("layout")
    if not lay:
        return []
    own, plain = lay["queries"]["exapg"], lay["queries"]["plain layout"]
    lines = [
        "",
        "## What the layout buys",
        "",
        "The same ExaPG server holds the data twice: in its own layout (schema `tpch`) and in the plain one "
        "(schema `tpch_plain`, as the stock server has it). The two run side by side, query by query, "
        f"medians of {r['repeat']} runs. Above 1.00 the layout helps.",
        "",
        f"Geometric mean: plain layout {ms(lay['geometric_mean']['plain layout'])} ms, ExaPG's "
        f"{ms(lay['geometric_mean']['exapg'])} ms: **the layout buys {lay['layout_buys']:.2f}x**.",
        "",
        "| query | plain layout | ExaPG layout | plain / ExaPG |",
        "|---|---:|---:|---:|",
    ]
    for number in sorted(own, key=int):
        p, e = plain[number], own[number]
        lines.append(f"| Q{number} | {ms(p)} | {ms(e)} | {p / e:.2f} |" if p and e else f"| Q{number} | - | - | - |")
    return lines


def load_rows(r: dict) -> list[str]:
    load = r["load"]
    stock, exapg = load["stock"], load["exapg"]
    runs = len(exapg.get("runs", [])) or 1
    ratio = load.get("exapg_over_stock_total")
    lines = ["", "## Bulk load", ""]
    if ratio is None:  # a run made before loads were repeated
        return [*lines, f"ExaPG {exapg['total_seconds']:.1f} s, stock {stock['total_seconds']:.1f} s in all."]
    plain = r.get("load_exapg_plain_layout")
    lines += [
        f"End to end (generation by DuckDB's dbgen, COPY, keys and indexes, statistics, CHECKPOINT), "
        f"{exapg['rows']:,} rows, medians of {runs} loads of each, the two servers alternating. ExaPG keeps its "
        "safety while it loads: data checksums, WAL for a standby (`wal_level=replica`, full-page writes, "
        "WAL compression) and WAL archiving where it is on.",
        "",
        "| | in all | generation | COPY | COPY, tables added up | keys and indexes | statistics | rows/s by COPY |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        load_row("stock, plain load", stock, "median_"),
        load_row("ExaPG, `exapg sample tpch`", exapg, "median_"),
    ]
    if plain:
        lines.append(load_row("ExaPG, plain load (once)", plain, ""))
    verdict = "at least as fast as stock: met" if ratio <= 1.0 else "at least as fast as stock: not met"
    lines += ["", f"ExaPG's load takes **{ratio:.2f}x** the stock load's time ({verdict}). COPY is the copy "
              "phase as it took (rows/s are over it); with several sessions the tables' own times overlap, so "
              "their sum can exceed it."
              + (" ExaPG builds each table's keys, indexes and statistics as soon as it is in, on the session "
                 "that copied it, while lineitem still copies: its COPY includes that work, and its keys, indexes "
                 "and statistics are what is left after the last copy (lineitem's). Its rows travel in "
                 "PostgreSQL's text format, stock's as CSV." if r.get("exapg_builds_during_copy") else "")
              + (" Generation and COPY were not timed apart before this was recorded (—)."
                 if any("—" in line for line in lines) else "")]
    return lines


def load_row(label: str, run: dict, prefix: str) -> str:
    """One load's line: medians (prefix "median_") or a single load's figures."""
    def seconds(key: str) -> str:
        value = run.get(prefix + key, run.get(key))
        return f"{value:.1f} s" if value is not None else "—"

    wall = run.get(prefix + "copy_wall_seconds")
    rate = run["rows"] / wall if wall else run["rows"] / run[prefix + "copy_seconds"]
    return (f"| {label} | {seconds('total_seconds')} | {seconds('generate_seconds')} | {seconds('copy_wall_seconds')} "
            f"| {seconds('copy_seconds')} | {seconds('index_seconds')} | {seconds('analyze_seconds')} | {rate:,.0f} |")


def load_variants(variants: list[tuple[Path, dict]]) -> list[str]:
    """Loads-only runs of a variant of ExaPG's load (results-sf<SF>-loads-*.json)."""
    if not variants:
        return []
    lines = ["", "Variants of ExaPG's load, each in a loads-only run (`run.py --loads-only`) with stock alternating. "
             "ExaPG's mode is standalone unless the run says ha: then its standby streams from it on this same "
             "machine, replaying the load's WAL on the cores the load uses, and each of the two nodes gets half "
             "the memory (ExaPG shares the machine out between its nodes). The last column leaves out DuckDB's "
             "generation, the same work on both sides, whose time varies most:",
             "", "| run | ExaPG mode | ExaPG sessions | ExaPG loads | stock loads | ExaPG / stock (medians) "
             "| without generation |",
             "|---|---|--:|---|---|--:|--:|"]
    notes: list[str] = []
    for path, v in variants:
        times = {n: ", ".join(f"{run['total_seconds']:.1f}" for run in v["load"][n]["runs"])
                 for n in ("exapg", "stock")}
        without = "-"  # older runs did not time the generation
        if all("generate_seconds" in run for n in ("exapg", "stock") for run in v["load"][n]["runs"]):
            served = {n: statistics.median(r["total_seconds"] - r["generate_seconds"] for r in v["load"][n]["runs"])
                      for n in ("exapg", "stock")}
            without = f"{served['exapg'] / served['stock']:.2f}x"
        lines.append(f"| {path.name} | {v.get('exapg_mode', 'standalone')} | {v.get('exapg_load_sessions', '-')} "
                     f"| {times['exapg']} s | {times['stock']} s | {v['load']['exapg_over_stock_total']:.2f}x "
                     f"| {without} |")
        behind = [run["standby_behind_seconds"] for run in v["load"]["exapg"]["runs"]
                  if "standby_behind_seconds" in run]
        if behind:
            notes.append(f"{max(behind):.1f} s in {path.name}")
    if notes:  # run.standby_behind
        lines += ["", "How far the standby was behind ExaPG's loads, at most: the time from a load's end until the "
                  f"standby had replayed the WAL written until then (`standby_behind_seconds`): {'; '.join(notes)}."]
    return lines


OWN_PARTS = {"stock": ("stock: ",), "exapg": ("exapg: ", "standby: ")}  # each load's own server(s)


def load_cpu(variants: list[tuple[Path, dict]]) -> list[str]:
    """Where the loads' CPU went, in the loads-only runs that read it (run.py, cpu.Meter)."""
    lines: list[str] = []
    for path, v in variants:
        runs = {n: [run["cpu_seconds"] for run in v["load"][n]["runs"] if "cpu_seconds" in run]
                for n in ("stock", "exapg")}
        if all(runs.values()):
            lines += cpu_table(path.name, v.get("exapg_mode", "standalone"), runs)
    return lines


def cpu_table(name: str, mode: str, runs: dict[str, list[dict[str, float]]]) -> list[str]:
    """Medians of CPU seconds per part, a column per server. A server's parts count only in its
    own loads: the other server's few tenths stay in "machine busy"."""
    parts = ["bench process (DuckDB, Python)"]
    for n, prefixes in OWN_PARTS.items():
        parts += sorted({p for run in runs[n] for p in run if p.startswith(prefixes)})
    parts += ["other services", "machine busy", "machine capacity"]
    medians = {(n, part): f"{statistics.median(run.get(part, 0.0) for run in runs[n]):.1f}"
               for n in OWN_PARTS for part in parts if part.startswith(OWN_PARTS[n]) or ":" not in part}
    busy = {n: statistics.median(run["machine busy"] / run["machine capacity"] for run in runs[n]) for n in OWN_PARTS}
    return ["", f"CPU seconds per load in {name} ({mode}), medians of {len(runs['exapg'])} loads each: a server's "
            "own processes by kind (the archiver with the archive commands it ran), the bench process that "
            "generates, sorts and sends the rows, the stack's other services, and the whole machine "
            "(capacity: the load's time on every CPU):", "",
            "| | stock | ExaPG |", "|---|--:|--:|",
            *[f"| {part} | {medians.get(('stock', part), '')} | {medians.get(('exapg', part), '')} |"
              for part in parts],
            f"| machine busy, share of capacity | {busy['stock']:.0%} | {busy['exapg']:.0%} |"]


def other_runs(source: Path, r: dict) -> list[str]:
    """Earlier whole runs of the same bench kept beside this one (results-sf<SF>-run<N>.json)."""
    runs = sorted(HERE.glob(f"{source.stem}-run*.json"))
    if not runs:
        return []
    lines = ["", "Whole runs of this bench, each with its own load, restarts and warm-up:", "",
             "| run | stock | ExaPG | ExaPG faster by | conditions |", "|---|---:|---:|---:|---|"]
    for path in [*runs, source]:
        other = r if path == source else json.loads(path.read_text())
        g = other["geometric_mean"]
        label = "this page" if path == source else path.name
        conditions = other.get("note", "-").split(":")[0].split(" (")[0]
        lines.append(f"| {label} | {ms(g['stock'])} ms | {ms(g['exapg'])} ms | "
                     f"{other['speedup_geometric_mean']:.2f}x | {conditions} |")
    return lines


def restart_rows(r: dict) -> list[str]:
    """shared_buffers and huge pages need a restart: ExaPG restarted without each, against stock."""
    sb, hp = r.get("shared_buffers"), r.get("huge_pages")
    if not sb or not hp:
        return []
    own = r.get("speedup_geometric_mean", 0)
    kb = r.get("hugetlb_kb", {})

    def row(label: str, run: dict) -> str:
        g = run["geometric_mean"]
        return f"| {label} | {ms(g['exapg'])} ms | {ms(g['stock'])} ms | **{run['speedup_geometric_mean']:.2f}x** |"

    return [
        "",
        "Two settings need a restart. ExaPG was restarted without each (everything else its own) and run side "
        "by side with stock again:",
        "",
        "| ExaPG restarted with | ExaPG | stock side by side | ExaPG faster than stock by |",
        "|---|---:|---:|---:|",
        f"| its own configuration (the main table) | {ms(r['geometric_mean']['exapg'])} ms | "
        f"{ms(r['geometric_mean']['stock'])} ms | **{own:.2f}x** |",
        row("no huge pages (`EXAPG_HUGE_PAGES=off`), shared buffers in 4 kB pages", hp),
        row(f"the stock shared_buffers ({sb['shared_buffers']}), in huge pages", sb),
        "",
        f"Shared memory in huge pages at the main run: ExaPG {kb.get('exapg', 0) / 1024:,.0f} MB, stock "
        f"{kb.get('stock', 0) / 1024:,.0f} MB (no pool is reserved for it, as on a stock machine). With its "
        "buffers in 4 kB pages, every parallel worker (a new process per query) and every new connection "
        "page-faults each buffer it reads, twice per 8 kB page; in 2 MB pages those faults all but vanish. "
        f"Without huge pages ExaPG used {hp['exapg_hugetlb_kb'] / 1024:,.0f} MB of them.",
    ]


if __name__ == "__main__":
    main()
