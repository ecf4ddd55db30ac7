"""Run the 22 TPC-H queries against the loaded data, check them, time them, record them."""

from __future__ import annotations

import html
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from exapg.errors import ExaPGError, InvalidParameterError, first_line
from exapg.tpch import duck
from exapg.tpch.check import compare
from exapg.tpch.load import SCHEMA, LoadedData, loaded

ALL_QUERIES = tuple(range(1, 23))
PASSING = ("ok", "unchecked", "unsupported")
# Settings recorded with every run: what shapes an analytic query's plan and speed.
RECORDED_SETTINGS = (
    "server_version", "shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem",
    "max_parallel_workers_per_gather", "max_parallel_workers", "max_worker_processes", "jit",
    "random_page_cost", "effective_io_concurrency", "default_statistics_target",
)


@dataclass
class QueryResult:
    query: int
    # "ok", "wrong" (answer differs), "error", "timeout", "unchecked" (no reference answer),
    # "unsupported" (Citus cannot plan the query on distributed tables: not timed, not a failure)
    status: str
    seconds: list[float] = field(default_factory=list)
    median: float | None = None
    rows: int | None = None
    detail: str = ""


@dataclass
class BenchRun:
    scale_factor: float
    checked: bool
    started_at: float
    results: list[QueryResult]
    geometric_mean: float | None
    passed: bool
    machine: dict[str, object]
    settings: dict[str, str]
    data: dict[str, object]
    label: str = "exapg"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_queries(text: str | None) -> list[int]:
    if not text:
        return list(ALL_QUERIES)
    chosen: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) not in ALL_QUERIES:
            raise InvalidParameterError(f"unknown TPC-H query {part!r}: use numbers 1 to 22, e.g. --queries 1,3,6")
        if int(part) not in chosen:
            chosen.append(int(part))
    return chosen


def geometric_mean(values: list[float]) -> float | None:
    positive = [v for v in values if v > 0]
    if not positive or len(positive) != len(values):
        return None
    return math.exp(sum(math.log(v) for v in positive) / len(positive))


def machine() -> dict[str, object]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpus": os.cpu_count(), "memory_bytes": memory, "platform": platform.platform(),
            "python": platform.python_version()}


def settings_of(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s)",
                        (list(RECORDED_SETTINGS),)).fetchall()
    return {str(name): str(value) for name, value in rows}


def run(
    conn: psycopg.Connection,
    *,
    queries: list[int],
    repeat: int,
    timeout_s: float,
    expect_scale: float | None = None,
    on_result: Callable[[QueryResult], None] | None = None,
) -> BenchRun:
    """Run `queries` `repeat` times each; the first run's rows are checked against the answer."""
    if repeat < 1 or repeat > 100:
        raise InvalidParameterError(f"invalid --repeat {repeat}: use 1 to 100")
    data = loaded(conn)
    if data is None:
        raise ExaPGError("no complete TPC-H data in this database: load it with 'exapg sample tpch --sf 0.01'")
    if expect_scale is not None and abs(expect_scale - data.scale_factor) > 1e-9:
        raise InvalidParameterError(
            f"the loaded TPC-H data is scale factor {data.scale_factor:g}, not {expect_scale:g}: "
            f"reload with 'exapg sample tpch --sf {expect_scale:g}' or drop --sf"
        )
    checked = duck.has_answers(data.scale_factor)
    started_at = time.time()
    texts = duck.queries()
    conn.execute("SELECT set_config('search_path', %s, false)", (SCHEMA,))
    if data.distributed:
        conn.execute("SET citus.enable_repartition_joins = on")
        # Q13 ships orders' rows to one node (about 100 MB per SF): past the default 1 GB at SF 10
        conn.execute("SET citus.max_intermediate_result_size = -1")
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(int(timeout_s * 1000)),))
    results: list[QueryResult] = []
    for number in queries:
        result = run_query(conn, number, texts[number], repeat, data if checked else None, data.distributed)
        results.append(result)
        if on_result:
            on_result(result)
    timed = [r.median for r in results if r.median is not None and r.status in ("ok", "unchecked")]
    passed = all(r.status in PASSING for r in results)
    return BenchRun(
        scale_factor=data.scale_factor, checked=checked, started_at=started_at, results=results,
        geometric_mean=geometric_mean(timed) if passed else None, passed=passed, machine=machine(),
        settings=settings_of(conn), data=asdict(data),
    )


def run_query(conn: psycopg.Connection, number: int, text: str, repeat: int, data: LoadedData | None,
              distributed: bool = False) -> QueryResult:
    result = QueryResult(number, "ok" if data else "unchecked")
    for attempt in range(repeat):
        started = time.perf_counter()
        try:
            rows = conn.execute(text).fetchall()
        except psycopg.errors.QueryCanceled:
            result.status, result.detail = "timeout", "statement timeout"
            return result
        except psycopg.Error as exc:
            unsupported = distributed and isinstance(exc, psycopg.errors.FeatureNotSupported)
            result.status = "unsupported" if unsupported else "error"
            result.detail = first_line(exc)
            return result
        result.seconds.append(time.perf_counter() - started)
        if attempt == 0:
            result.rows = len(rows)
            if data is not None:
                reference = duck.answer(data.scale_factor, number)
                verdict = compare(rows, reference) if reference is not None else None
                if verdict is not None and not verdict.ok:
                    result.status, result.detail = "wrong", verdict.detail
                    return result
    result.median = statistics.median(result.seconds)
    return result


def save(run_: BenchRun, folder: Path) -> tuple[Path, Path]:
    """results/tpch-<time>.json and .html, and tpch-latest.json for the management UI."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(run_.started_at))
    document = json.dumps(run_.to_dict(), indent=2)
    path = folder / f"tpch-{stamp}.json"
    path.write_text(document)
    chart = folder / f"tpch-{stamp}.html"
    chart.write_text(html_chart(run_))
    (folder / "tpch-latest.json").write_text(document)
    return path, chart


def html_chart(run_: BenchRun) -> str:
    """Per-query median times as a horizontal bar chart (inline SVG, no script)."""
    rows = run_.results
    longest = max((r.median or 0 for r in rows), default=0) or 1
    bar_h, width, left = 22, 560, 60
    parts = []
    for i, r in enumerate(rows):
        y = 10 + i * bar_h
        length = (r.median or 0) / longest * width
        colour = "#2f6fdf" if r.status in ("ok", "unchecked") else "#9e9e9e" if r.status == "unsupported" else "#c62828"
        label = f"{r.median * 1000:.1f} ms" if r.median is not None else r.status
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">Q{r.query}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{bar_h - 6}" fill="{colour}"/>'
            f'<text x="{left + length + 6:.1f}" y="{y + 15}">{html.escape(label)}</text>'
        )
    height = 20 + len(rows) * bar_h
    gm = f"{run_.geometric_mean * 1000:.1f} ms" if run_.geometric_mean else "n/a (a query failed)"
    checked = "checked" if run_.checked else "not checked"
    title = f"ExaPG TPC-H SF {run_.scale_factor:g}: geometric mean {gm}, answers {checked}"
    return (
        "<!doctype html><meta charset=utf-8><title>ExaPG TPC-H</title>"
        "<style>body{font:14px sans-serif;margin:2em}text{font:12px sans-serif}</style>"
        f"<h1>{html.escape(title)}</h1>"
        f'<svg width="{left + width + 120}" height="{height}" role="img">{"".join(parts)}</svg>'
    )
