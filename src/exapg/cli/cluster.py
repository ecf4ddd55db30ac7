"""Citus commands: scale, rebalance, distribute, reference, columnar."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from exapg.cli.common import backend_option, report, runtime, spinner

if TYPE_CHECKING:
    from exapg.postgres.conn import Dsn


def _cluster_dsn(ctx: typer.Context, command: str, backend: str | None) -> Dsn:
    """The coordinator of a cluster-mode stack; other modes stop here with exit 2."""
    chosen = runtime(ctx, backend)
    chosen.require_cluster(command)
    return chosen.coordinator_dsn()


def scale(
    ctx: typer.Context,
    workers: int = typer.Option(..., "--workers", min=1, max=64, help="Number of Citus workers."),
    rebalance: bool = typer.Option(True, "--rebalance/--no-rebalance", help="Move shards to new workers."),
    backend: str | None = backend_option(),
) -> None:
    """Add or remove Citus workers online (removal drains the workers first)."""
    chosen = runtime(ctx, backend, progress=True)
    with spinner(ctx):
        actions = chosen.scale(workers, rebalance=rebalance)
    report(actions, "nothing to do")


def rebalance(
    ctx: typer.Context,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the rebalance to its end."),
    backend: str | None = backend_option(),
) -> None:
    """Spread shards evenly over the workers (Citus background rebalance)."""
    chosen = runtime(ctx, backend, progress=True)
    with spinner(ctx):
        actions = chosen.rebalance(wait=wait)
    report(actions, "nothing to do")


def distribute(
    ctx: typer.Context,
    table: str = typer.Argument(..., help="table or schema.table"),
    column: str = typer.Option(..., "--column", help="Distribution column."),
    colocate_with: str | None = typer.Option(None, "--colocate-with", help="Co-locate with this table."),
    shard_count: int | None = typer.Option(None, "--shard-count", min=1, max=64000),
    backend: str | None = backend_option(),
) -> None:
    """Distribute a table over the workers by a column."""
    from exapg.cluster import citus
    from exapg.postgres.conn import connect

    with connect(_cluster_dsn(ctx, "distribute", backend), statement_timeout_ms=0) as conn:
        citus.distribute(conn, table, column, colocate_with, shard_count)
    report([f"{table} distributed by {column}"], "")


def reference(ctx: typer.Context, table: str = typer.Argument(..., help="table or schema.table"),
              backend: str | None = backend_option()) -> None:
    """Replicate a (small) table to every node as a reference table."""
    from exapg.cluster import citus
    from exapg.postgres.conn import connect

    with connect(_cluster_dsn(ctx, "reference", backend), statement_timeout_ms=0) as conn:
        citus.make_reference(conn, table)
    report([f"{table} is now a reference table"], "")


def columnar(ctx: typer.Context, table: str = typer.Argument(..., help="table or schema.table"),
             backend: str | None = backend_option()) -> None:
    """Store a table with Citus columnar storage (compressed, for scans)."""
    from exapg.cluster import citus
    from exapg.postgres.conn import connect

    with connect(_cluster_dsn(ctx, "columnar", backend), statement_timeout_ms=0) as conn:
        citus.make_columnar(conn, table)
    report([f"{table} now uses columnar storage"], "")


def register(app: typer.Typer) -> None:
    for command in (scale, rebalance, distribute, reference, columnar):
        app.command()(command)
