"""Commands that operate the stack: up, stop, restart, down, status, health, logs, sql, credentials."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from exapg.cli import quick
from exapg.cli.common import backend_option, chosen_backend, local_runtime, report, runtime, spinner
from exapg.cli.output import info, print_json, print_mapping
from exapg.cluster.topology import Mode
from exapg.errors import InvalidParameterError

if TYPE_CHECKING:
    from exapg.runtime.local import LocalRuntime

SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def up(
    ctx: typer.Context,
    mode: Mode | None = typer.Option(
        None, "--mode",
        help="standalone, ha (with a hot standby) or cluster (Citus). Default: the stack's mode, else ha.",
    ),
    workers: int | None = typer.Option(None, "--workers", min=0, max=64, help="Citus workers (cluster mode)."),
    standby: bool | None = typer.Option(None, "--standby/--no-standby", help="Add a hot standby (implied by ha)."),
    backend: str | None = backend_option(),
) -> None:
    """Set up and start the stack (idempotent: starts only what is not running)."""
    chosen = runtime(ctx, backend, progress=True)
    with spinner(ctx):
        actions = chosen.up(mode=mode, workers=workers, standby=standby)
    if chosen_backend(ctx, backend) == "docker":
        report(actions, "")
        return
    name = chosen.settings.compose_project_name
    if not actions:
        info(f"ExaPG stack '{name}' is already up: nothing to do.")
    else:
        info(f"ExaPG stack '{name}' is up:")
        report(actions, "")
    quick.print_status(chosen.status(), as_json=False)
    _print_connect(local_runtime(ctx))


def _print_connect(runtime: LocalRuntime) -> None:
    s, stack = runtime.settings, runtime.stack
    psql = shutil.which("psql") or str(stack.binaries("psql"))
    info("\nConnect:")
    primary = stack.topology.coordinator
    named = primary.name if primary.name == "coordinator" else f"{primary.name} (primary)"
    for label, port in ((named, primary.port), ("pgBouncer", s.pgbouncer_port)):
        info(f"  {label}: PGPASSFILE={stack.passfile} {psql} -h 127.0.0.1 -p {port} "
             f"-U {s.postgres_user} {s.postgres_db}")
    exapg = _exapg_command()
    info(f"  or simply: {exapg} sql    (credentials: {exapg} credentials)")
    info(f"\nManagement UI: http://127.0.0.1:{s.mgmt_backend_port}/  (log in as 'admin'; "
         f"the password is shown by '{exapg} credentials')")


def _exapg_command() -> str:
    """How to call this very exapg: its name when PATH finds it, else its path (.venv/bin)."""
    here = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    on_path = shutil.which("exapg")
    if here is None or here.name != "exapg" or (on_path and Path(on_path).resolve() == here):
        return "exapg"
    try:
        return os.path.relpath(here)
    except ValueError:
        return str(here)


def stop(ctx: typer.Context, backend: str | None = backend_option()) -> None:
    """Stop every service gracefully; data is kept."""
    chosen = runtime(ctx, backend, progress=True)
    with spinner(ctx):
        actions = chosen.stop()
    report(actions, "nothing was running")


def restart(ctx: typer.Context, backend: str | None = backend_option()) -> None:
    """Stop, then start the stack again in its current mode (settings are checked first)."""
    chosen = runtime(ctx, backend, progress=True)
    with spinner(ctx):
        actions = chosen.restart()
    report(actions, "nothing to do")
    if chosen_backend(ctx, backend) == "local":
        quick.print_status(chosen.status(), as_json=False)


def down(
    ctx: typer.Context,
    volumes: bool = typer.Option(False, "--volumes", "-v", help="Also delete every data directory, secrets and logs."),
    backend: str | None = backend_option(),
) -> None:
    """Stop the stack and remove generated files; only --volumes deletes data."""
    chosen = runtime(ctx, backend, progress=True)
    with spinner(ctx):
        actions = chosen.down(volumes=volumes)
    report(actions, "no stack here: nothing to do")


def status(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output."),
    backend: str | None = backend_option(),
) -> None:
    """Every service with its port, pid, state and health."""
    quick.report_status(ctx.obj.settings, chosen_backend(ctx, backend), as_json)


def health(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output."),
    backend: str | None = backend_option(),
) -> None:
    """Exit 0 only when every service passes its health check (pg_isready, HTTP GET, or the
    container's own health check)."""
    code = quick.report_health(ctx.obj.settings, chosen_backend(ctx, backend), as_json)
    if code:
        raise typer.Exit(code)


def parse_since(text: str) -> float:
    """'90s', '15m', '1h', '2d' before now, or an ISO date/time, as a UNIX timestamp."""
    from datetime import UTC, datetime

    unit = text[-1:].lower()
    if unit in SINCE_UNITS and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * SINCE_UNITS[unit]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameterError(f"--since {text!r}: use a duration (30m, 1h, 2d) or an ISO time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def logs(
    ctx: typer.Context,
    service: str | None = typer.Argument(None, help="Service name (default: all)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    since: str | None = typer.Option(None, "--since", help="Only lines newer than this (30m, 1h, ISO time)."),
    timestamps: bool = typer.Option(False, "--timestamps", "-t", help="Prefix every line with its time."),
    backend: str | None = backend_option(),
) -> None:
    """Print service logs, merged in time order."""
    cutoff = parse_since(since) if since else None
    try:
        for line in runtime(ctx, backend).logs(service, follow, cutoff, timestamps):
            typer.echo(line)
    except KeyboardInterrupt:
        return


def sql(
    ctx: typer.Context,
    service: str | None = typer.Argument(
        None, help="Node (coordinator, standby, workerN) or pgbouncer. Default: the primary."),
    command: str | None = typer.Option(None, "--command", "-c", help="Run this SQL and exit."),
    backend: str | None = backend_option(),
) -> None:
    """Open psql on a node (or run one command with -c), authenticated from the stack's secrets."""
    interactive = sys.stdin.isatty() and command is None
    if service is None:  # the node that is primary now (a switchover moves it)
        local = chosen_backend(ctx, backend) == "local"
        service = local_runtime(ctx).stack.topology.coordinator.name if local else "coordinator"
    argv, env = runtime(ctx, backend).psql_command(service, command, interactive)
    os.execve(argv[0], argv, env)


def credentials(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output."),
    backend: str | None = backend_option(),
) -> None:
    """Show how to log in: users, passwords, connection URLs."""
    found = runtime(ctx, backend).credentials()
    print_json(found) if as_json else print_mapping(found, title="ExaPG credentials (keep them secret)")


def register(app: typer.Typer) -> None:
    for command in (up, stop, restart, down, status, health, logs, sql, credentials):
        app.command()(command)
