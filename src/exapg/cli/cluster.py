"""Citus commands: scale, rebalance, distribute, reference, columnar."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from exapg.cli.output import console
from exapg.cli.stack import _chosen_backend, _report, _runtime, _spinner, backend_option
from exapg.cluster import citus
from exapg.postgres.conn import Dsn, connect

if TYPE_CHECKING:
    from exapg.runtime.docker import DockerRuntime


def _cluster_dsn(ctx: typer.Context, command: str, backend: str | None) -> Dsn:
    """The coordinator of a cluster-mode stack; other modes stop here with exit 2."""
    if _chosen_backend(ctx, backend) == "docker":
        runtime = _docker_runtime(ctx)
        runtime.require_cluster(command)
        return runtime.coordinator_dsn()
    local = _runtime(ctx)
    local.require_cluster(command)
    return local.dsn()


def _docker_runtime(ctx: typer.Context) -> DockerRuntime:
    from exapg.runtime.docker import DockerRuntime

    return DockerRuntime(ctx.obj.settings)


def _progress(ctx: typer.Context) -> Callable[[str], None] | None:
    """A spinner line for long work on a terminal (None when piped)."""
    if not console.is_terminal:
        return None
    status = console.status("working…")
    ctx.obj.spinner = status
    return lambda text: status.update(text)


def scale(
    ctx: typer.Context,
    workers: int = typer.Option(..., "--workers", min=1, max=64, help="Number of Citus workers."),
    rebalance: bool = typer.Option(True, "--rebalance/--no-rebalance", help="Move shards to new workers."),
    backend: str | None = backend_option(),
) -> None:
    """Add or remove Citus workers online (removal drains the workers first)."""
    if _chosen_backend(ctx, backend) == "docker":
        runtime = _docker_runtime(ctx)
        with _spinner(ctx):  # type: ignore[attr-defined]
            _report(runtime.scale(workers, rebalance=rebalance, progress=_progress(ctx)), "nothing to do")
        return
    runtime = _runtime(ctx, progress=True)
    with _spinner(ctx):  # type: ignore[attr-defined]
        actions = runtime.scale(workers, rebalance=rebalance)
    _report(actions, "nothing to do")


def rebalance(
    ctx: typer.Context,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the rebalance to its end."),
    backend: str | None = backend_option(),
) -> None:
    """Spread shards evenly over the workers (Citus background rebalance)."""
    if _chosen_backend(ctx, backend) == "docker":
        docker = _docker_runtime(ctx)
        with _spinner(ctx):  # type: ignore[attr-defined]
            _report(docker.rebalance(wait=wait, progress=_progress(ctx)), "nothing to do")
        return
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
    backend: str | None = backend_option(),
) -> None:
    """Distribute a table over the workers by a column."""
    with connect(_cluster_dsn(ctx, "distribute", backend), statement_timeout_ms=0) as conn:
        citus.distribute(conn, table, column, colocate_with, shard_count)
    _report([f"{table} distributed by {column}"], "")


def reference(ctx: typer.Context, table: str = typer.Argument(..., help="table or schema.table"),
              backend: str | None = backend_option()) -> None:
    """Replicate a (small) table to every node as a reference table."""
    with connect(_cluster_dsn(ctx, "reference", backend), statement_timeout_ms=0) as conn:
        citus.make_reference(conn, table)
    _report([f"{table} is now a reference table"], "")


def columnar(ctx: typer.Context, table: str = typer.Argument(..., help="table or schema.table"),
             backend: str | None = backend_option()) -> None:
    """Store a table with Citus columnar storage (compressed, for scans)."""
    with connect(_cluster_dsn(ctx, "columnar", backend), statement_timeout_ms=0) as conn:
        citus.make_columnar(conn, table)
    _report([f"{table} now uses columnar storage"], "")


def register(app: typer.Typer) -> None:
    for command in (scale, rebalance, distribute, reference, columnar):
        app.command()(command)
