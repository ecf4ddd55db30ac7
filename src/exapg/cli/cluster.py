"""Citus commands: scale, rebalance, distribute, reference, columnar."""

from __future__ import annotations

import typer

from exapg.cli.stack import _any_runtime, _chosen_backend, _report, _runtime, _spinner, backend_option
from exapg.cluster import citus
from exapg.postgres.conn import Dsn, connect


def _cluster_dsn(ctx: typer.Context, command: str) -> Dsn:
    """The coordinator of a cluster-mode stack; other modes stop here with exit 2."""
    runtime = _runtime(ctx)
    runtime.require_cluster(command)
    return runtime.dsn()


def scale(
    ctx: typer.Context,
    workers: int = typer.Option(..., "--workers", min=1, max=64, help="Number of Citus workers."),
    rebalance: bool = typer.Option(True, "--rebalance/--no-rebalance", help="Move shards to new workers."),
    backend: str | None = backend_option(),
) -> None:
    """Add or remove Citus workers online (removal drains the workers first)."""
    if _chosen_backend(ctx, backend) == "docker":
        _report(_any_runtime(ctx, "docker").scale(workers), "nothing to do")
        return
    runtime = _runtime(ctx, progress=True)
    with _spinner(ctx):  # type: ignore[attr-defined]
        actions = runtime.scale(workers, rebalance=rebalance)
    _report(actions, "nothing to do")


def rebalance(
    ctx: typer.Context,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the rebalance to its end."),
) -> None:
    """Spread shards evenly over the workers (Citus background rebalance)."""
    runtime = _runtime(ctx, progress=True)
    with _spinner(ctx):  # type: ignore[attr-defined]
        actions = runtime.rebalance(wait=wait)
    _report(actions, "nothing to do")


def distribute(
    ctx: typer.Context,
    table: str = typer.Argument(..., help="table or schema.table"),
    column: str = typer.Option(..., "--column", help="Distribution column."),
    colocate_with: str | None = typer.Option(None, "--colocate-with", help="Co-locate with this table."),
    shard_count: int | None = typer.Option(None, "--shard-count", min=1, max=64000),
) -> None:
    """Distribute a table over the workers by a column."""
    with connect(_cluster_dsn(ctx, "distribute"), statement_timeout_ms=0) as conn:
        citus.distribute(conn, table, column, colocate_with, shard_count)
    _report([f"{table} distributed by {column}"], "")


def reference(ctx: typer.Context, table: str = typer.Argument(..., help="table or schema.table")) -> None:
    """Replicate a (small) table to every node as a reference table."""
    with connect(_cluster_dsn(ctx, "reference"), statement_timeout_ms=0) as conn:
        citus.make_reference(conn, table)
    _report([f"{table} is now a reference table"], "")


def columnar(ctx: typer.Context, table: str = typer.Argument(..., help="table or schema.table")) -> None:
    """Store a table with Citus columnar storage (compressed, for scans)."""
    with connect(_cluster_dsn(ctx, "columnar"), statement_timeout_ms=0) as conn:
        citus.make_columnar(conn, table)
    _report([f"{table} now uses columnar storage"], "")


def register(app: typer.Typer) -> None:
    for command in (scale, rebalance, distribute, reference, columnar):
        app.command()(command)
