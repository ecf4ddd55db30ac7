"""`exapg sample tpch`, `exapg bench tpch` and `exapg bench pgbench`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from exapg.cli.common import backend_option, chosen_backend, local_runtime, runtime
from exapg.cli.output import console, info, print_json, print_table
from exapg.errors import ExaPGError, InvalidParameterError

if TYPE_CHECKING:
    from exapg.postgres.conn import Dsn
    from exapg.stack import Stack

sample_app = typer.Typer(help="Load sample data sets into the running stack.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks against the running stack.", no_args_is_help=True)


def _target(ctx: typer.Context, backend: str | None) -> tuple[Dsn, Path]:
    """The coordinator to load into or query, and where results go: the local stack's, or
    the Docker stack's through its published port."""
    if chosen_backend(ctx, backend) == "docker":
        return runtime(ctx, backend).coordinator_dsn(), ctx.obj.settings.state_dir / "results"
    stack = _running(ctx)
    return stack.dsn(), stack.root / "results"


def _running(ctx: typer.Context) -> Stack:
    """The local stack, once its coordinator is known to run."""
    stack = local_runtime(ctx).stack
    coordinator = stack.topology.coordinator
    if stack.server(coordinator).pidfile() is None:
        raise ExaPGError(f"the coordinator of stack '{stack.name}' is not running: start it with 'exapg up'")
    return stack


@sample_app.command("tpch")
def sample_tpch(
    ctx: typer.Context,
    sf: float = typer.Option(..., "--sf", help="Scale factor (1 = about 1 GB; answers exist for 0.01, 0.1, 1)."),
    columnar: bool = typer.Option(False, "--columnar", help="Store lineitem and orders with Citus columnar."),
    layout_name: str = typer.Option(
        "exapg", "--layout",
        help="exapg: tables in date order, BRIN on the dates, COPY FREEZE, parallel sessions; "
             "plain: as generated, B-trees, VACUUM (docs/tpch.md)."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
    backend: str | None = backend_option(),
) -> None:
    """Generate TPC-H data with DuckDB's dbgen and stream it in with COPY (schema tpch)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from exapg.postgres.conn import connect
    from exapg.tpch import load as tpch_load

    tpch_load.check_scale(sf)
    layout = tpch_load.layout_named(layout_name)
    dsn, _ = _target(ctx, backend)
    with connect(dsn, statement_timeout_ms=0) as conn:
        if as_json or not console.is_terminal:
            data = tpch_load.load(conn, sf, columnar=columnar, layout=layout)
        else:
            with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console, transient=False) as bar:
                tasks: dict[str, TaskID] = {}
                stage = bar.add_task("preparing", total=None)

                def progress(table: str, done: int, expected: int) -> None:
                    if table not in tasks:
                        tasks[table] = bar.add_task(table, total=expected)
                    bar.update(tasks[table], completed=min(done, expected))

                data = tpch_load.load(conn, sf, columnar=columnar, layout=layout, progress=progress,
                                      stage=lambda text: bar.update(stage, description=text[:60]))
                bar.update(stage, description="done", total=1, completed=1)
    total = sum(data.rows.values())
    rate = tpch_load.copy_rate(data)
    if as_json:
        print_json({**asdict(data), "rows_per_second": rate})
        return
    info(f"TPC-H SF {data.scale_factor:g} loaded into schema tpch: {total:,} rows "
         f"({rate:,.0f} rows/s by COPY)" + ("; distributed with Citus" if data.distributed else ""))


@bench_app.command("tpch")
def bench_tpch(
    ctx: typer.Context,
    sf: float | None = typer.Option(None, "--sf", help="Expect this scale factor to be loaded."),
    queries: str | None = typer.Option(None, "--queries", help="Comma-separated query numbers (default: 1-22)."),
    repeat: int = typer.Option(3, "--repeat", help="Runs per query; the median is reported."),
    timeout: float = typer.Option(600, "--timeout", min=1, help="Per-query statement timeout, seconds."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
    backend: str | None = backend_option(),
) -> None:
    """Run the TPC-H queries, check every answer, report times and the geometric mean."""
    from exapg.postgres.conn import connect
    from exapg.tpch import load as tpch_load
    from exapg.tpch import run as tpch_run

    if sf is not None:
        tpch_load.check_scale(sf)
    chosen = tpch_run.parse_queries(queries)
    if not 1 <= repeat <= 100:
        raise InvalidParameterError(f"invalid --repeat {repeat}: use 1 to 100")
    dsn, results = _target(ctx, backend)

    def show(result: tpch_run.QueryResult) -> None:
        if not as_json:
            took = f"{result.median * 1000:9.1f} ms" if result.median is not None else " " * 12
            console.print(f"Q{result.query:<3} {took}  {result.status}  {result.detail}".rstrip())

    with connect(dsn, statement_timeout_ms=0) as conn:
        outcome = tpch_run.run(conn, queries=chosen, repeat=repeat, timeout_s=timeout, expect_scale=sf,
                               on_result=show)
    path, chart = tpch_run.save(outcome, results)
    if as_json:
        print_json({**outcome.to_dict(), "result_file": str(path), "chart_file": str(chart)})
    else:
        gm = f"{outcome.geometric_mean * 1000:.1f} ms" if outcome.geometric_mean else "n/a"
        check = "answers checked" if outcome.checked else "no reference answers at this scale factor: unchecked"
        skipped = [f"Q{r.query}" for r in outcome.results if r.status == "unsupported"]
        if skipped:
            gm += f" over {len(outcome.results) - len(skipped)} queries ({', '.join(skipped)}: not plannable by Citus)"
        info(f"SF {outcome.scale_factor:g}: geometric mean {gm}; {check}; results in {path}, chart {chart}")
    if not outcome.passed:
        failed = [f"Q{r.query} {r.status}" for r in outcome.results if r.status not in tpch_run.PASSING]
        raise ExaPGError(f"{len(failed)} TPC-H quer{'y' if len(failed) == 1 else 'ies'} failed: {', '.join(failed)}")


@bench_app.command("pgbench")
def bench_pgbench(
    ctx: typer.Context,
    clients: int = typer.Option(10, "--clients", help="Concurrent clients (1-1000)."),
    seconds: int = typer.Option(10, "--time", help="Seconds per run (1-3600)."),
    scale: int = typer.Option(1, "--scale", help="pgbench scale (100,000 accounts each)."),
    connect_each: bool = typer.Option(False, "--connect", "-C", help="A new connection per transaction."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """pgbench through pgBouncer and directly against the coordinator, side by side."""
    from exapg.postgres.pgbench import Pgbench

    if not 1 <= clients <= 1000:
        raise InvalidParameterError(f"invalid --clients {clients}: use 1 to 1000")
    if not 1 <= seconds <= 3600:
        raise InvalidParameterError(f"invalid --time {seconds}: use 1 to 3600 seconds")
    if not 1 <= scale <= 10000:
        raise InvalidParameterError(f"invalid --scale {scale}: use 1 to 10000")
    stack = _running(ctx)
    direct, pooled = stack.dsn(), stack.dsn(pooled=True)
    pgbench = Pgbench(stack.binaries("pgbench"), stack.passfile)
    pgbench.initialize(direct, scale)
    runs = pgbench.compare({"pgbouncer": pooled, "direct": direct}, clients=clients, seconds=seconds,
                           connect_each=connect_each)
    rows = [r.to_dict() for r in runs]
    if as_json:
        print_json(rows)
    else:
        kind = "a connection per transaction" if connect_each else "persistent connections"
        print_table(rows, ["target", "port", "clients", "tps", "transactions", "failed", "first_error"],
                    title=f"pgbench, {seconds}s, {kind}")
    if all(r.tps is None for r in runs):
        raise ExaPGError("pgbench produced no result: " + (runs[0].first_error or "see 'exapg logs'"))


def register(app: typer.Typer) -> None:
    app.add_typer(sample_app, name="sample")
    app.add_typer(bench_app, name="bench")



