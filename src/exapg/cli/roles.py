"""Commands that change which node of an ha stack is primary: switchover, failover, rejoin."""

from __future__ import annotations

import typer

from exapg.cli.common import local_runtime, report, spinner
from exapg.cli.output import info


def switchover(ctx: typer.Context) -> None:
    """Planned change of primary (ha): pgBouncer pauses its clients, the primary stops cleanly,
    the standby is promoted once it has replayed all of it (no committed transaction is lost),
    and the old primary follows the new one."""
    runtime = local_runtime(ctx, progress=True)
    with spinner(ctx):
        actions = runtime.switchover()
    report(actions, "")
    info(f"{runtime.stack.topology.coordinator.name} is the primary now.")


def failover(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Fail over although the primary answers (it is stopped)."),
) -> None:
    """The primary is gone (ha): promote the standby, then rewind (or clone again) the old
    primary as its standby. Transactions the standby had not received are lost; refused while
    the primary answers (use switchover)."""
    runtime = local_runtime(ctx, progress=True)
    with spinner(ctx):
        actions = runtime.failover(force=force)
    report(actions, "")
    info(f"{runtime.stack.topology.coordinator.name} is the primary now.")


def rejoin(
    ctx: typer.Context,
    node: str | None = typer.Argument(None, help="The node to make a standby again (default: the standby)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Clone it again without trying pg_rewind."),
) -> None:
    """Make a standby that does not follow the primary (promoted by hand, a failed rejoin)
    its standby again: rewound with pg_rewind, or cloned again (its old data kept aside).
    What it wrote on its own is discarded; the primary is never touched."""
    runtime = local_runtime(ctx, progress=True)
    with spinner(ctx):
        actions = runtime.rejoin(node, rebuild=rebuild)
    primary = runtime.stack.topology.coordinator.name
    if not actions:
        info(f"{node or runtime.stack.topology.standbys[0].name} already streams from {primary}: nothing to do.")
        return
    report(actions, "")


def register(app: typer.Typer) -> None:
    for command in (switchover, failover, rejoin):
        app.command()(command)
