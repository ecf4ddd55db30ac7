"""Commands that operate the stack: up, stop, restart, down, status, health, logs, sql, credentials."""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from exapg.cli.output import console, error, info, print_json, print_mapping, print_table
from exapg.cluster.topology import Mode
from exapg.errors import ExitCode, InvalidParameterError
from exapg.runtime.base import Runtime
from exapg.runtime.local import LocalRuntime
from exapg.settings import Settings
from exapg.status import ServiceStatus

if TYPE_CHECKING:
    from exapg.runtime.docker import DockerRuntime

STATUS_COLUMNS = ("name", "role", "port", "pid", "state", "healthy", "detail")
SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _runtime(ctx: typer.Context, progress: bool = False) -> LocalRuntime:
    """The local runtime, for commands that have no Docker implementation: with the Docker
    backend chosen they refuse (exit 2) rather than act on a local stack instead."""
    chosen = ctx.params.get("backend") or ctx.obj.settings.backend
    if chosen == "docker":
        command = ctx.command_path.removeprefix("exapg ").strip() or ctx.info_name
        raise InvalidParameterError(
            f"'exapg {command}' works on the local runtime only and the backend is docker (EXAPG_BACKEND or "
            "--backend): use docker compose for it (docs/docker.md), or EXAPG_BACKEND=local")
    return _local_runtime(ctx, progress)


def _local_runtime(ctx: typer.Context, progress: bool = False) -> LocalRuntime:
    settings: Settings = ctx.obj.settings
    if not progress or not console.is_terminal:
        return LocalRuntime(settings)
    status = console.status("working…")
    ctx.obj.spinner = status
    return LocalRuntime(settings, progress=lambda text: status.update(text))


BACKEND_HELP = "local (this machine) or docker (Docker Compose). Default: EXAPG_BACKEND, else local."


def backend_option() -> Any:
    return typer.Option(None, "--backend", help=BACKEND_HELP)


def _chosen_backend(ctx: typer.Context, backend: str | None) -> str:
    chosen = backend or ctx.obj.settings.backend
    if chosen not in ("local", "docker"):
        raise InvalidParameterError(f"--backend must be local or docker, not {chosen!r}")
    return str(chosen)


def _any_runtime(ctx: typer.Context, backend: str | None, progress: bool = False) -> Runtime:
    """The runtime the settings (or --backend) pick: one interface, two implementations."""
    if _chosen_backend(ctx, backend) == "docker":
        from exapg.runtime.docker import DockerRuntime

        return DockerRuntime(ctx.obj.settings)
    return _local_runtime(ctx, progress=progress)


def _docker(ctx: typer.Context) -> DockerRuntime:
    from exapg.runtime.docker import DockerRuntime

    return DockerRuntime(ctx.obj.settings)


def _spinner(ctx: typer.Context) -> object:
    return getattr(ctx.obj, "spinner", None) or nullcontext()


def _report(actions: list[str], nothing: str) -> None:
    for line in actions:
        info(f"  • {line}")
    if not actions:
        info(nothing)


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
    if _chosen_backend(ctx, backend) == "docker":
        _report(_any_runtime(ctx, "docker").up(mode.value if mode else None, workers), "")
        return
    runtime = _runtime(ctx, progress=True)
    with _spinner(ctx):  # type: ignore[attr-defined]
        actions = runtime.up(mode=mode.value if mode else None, workers=workers, standby=standby)
    name = runtime.settings.compose_project_name
    if not actions:
        info(f"ExaPG stack '{name}' is already up: nothing to do.")
    else:
        info(f"ExaPG stack '{name}' is up:")
        _report(actions, "")
    _print_status(runtime.status(), as_json=False)
    _print_connect(runtime)


def _print_connect(runtime: LocalRuntime) -> None:
    s = runtime.settings
    psql = shutil.which("psql") or str(runtime.binaries("psql"))
    info("\nConnect:")
    for label, port in (("coordinator", s.coordinator_port), ("pgBouncer", s.pgbouncer_port)):
        info(f"  {label}: PGPASSFILE={runtime.passfile} {psql} -h 127.0.0.1 -p {port} "
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
    runtime = _any_runtime(ctx, backend, progress=True)
    with _spinner(ctx):  # type: ignore[attr-defined]
        actions = runtime.stop()
    _report(actions, "nothing was running")


def restart(ctx: typer.Context, backend: str | None = backend_option()) -> None:
    """Stop, then start the stack again in its current mode."""
    if _chosen_backend(ctx, backend) == "docker":
        _report(_docker(ctx).restart(), "nothing to do")
        return
    runtime = _runtime(ctx, progress=True)
    runtime.validate()  # refuse bad settings before stopping anything
    with _spinner(ctx):  # type: ignore[attr-defined]
        actions = runtime.stop() + runtime.up()
    _report(actions, "nothing to do")
    _print_status(runtime.status(), as_json=False)


def down(
    ctx: typer.Context,
    volumes: bool = typer.Option(False, "--volumes", "-v", help="Also delete every data directory, secrets and logs."),
    backend: str | None = backend_option(),
) -> None:
    """Stop the stack and remove generated files; only --volumes deletes data."""
    runtime = _any_runtime(ctx, backend, progress=True)
    with _spinner(ctx):  # type: ignore[attr-defined]
        actions = runtime.down(volumes=volumes)
    _report(actions, "no stack here: nothing to do")


def _print_status(statuses: list[ServiceStatus], as_json: bool) -> None:
    rows = [s.to_dict() for s in statuses]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, STATUS_COLUMNS)


def status(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output."),
    backend: str | None = backend_option(),
) -> None:
    """Every service with its port, pid, state and health."""
    _print_status(_any_runtime(ctx, backend).status(), as_json)


def health(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output."),
    backend: str | None = backend_option(),
) -> None:
    """Exit 0 only when every service passes its health check (pg_isready, HTTP GET, or the
    container's own health check)."""
    statuses = _any_runtime(ctx, backend).status()
    failing = [s for s in statuses if not s.healthy]
    healthy = bool(statuses) and not failing
    if as_json:
        print_json({"healthy": healthy, "services": [s.to_dict() for s in statuses]})
    elif not statuses:
        error("no service of this stack is running: start it with 'exapg up'")
    elif failing:
        for s in failing:
            error(f"{s.name} is unhealthy: {s.state}, {s.detail}")
    else:
        info(f"[green]healthy[/]: {len(statuses)} services pass their checks")
    if not healthy:
        raise typer.Exit(int(ExitCode.ERROR))


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
        for line in _any_runtime(ctx, backend).logs(service, follow, cutoff, timestamps):
            typer.echo(line)
    except KeyboardInterrupt:
        return


def sql(
    ctx: typer.Context,
    service: str = typer.Argument("coordinator", help="Node (coordinator, standby, workerN) or pgbouncer."),
    command: str | None = typer.Option(None, "--command", "-c", help="Run this SQL and exit."),
    backend: str | None = backend_option(),
) -> None:
    """Open psql on a node (or run one command with -c), authenticated from the stack's secrets."""
    if _chosen_backend(ctx, backend) == "docker":
        docker = _docker(ctx)
        argv = docker.psql_argv(service, command, interactive=sys.stdin.isatty() and command is None)
        from exapg.runtime.docker import compose_environment, require_engine

        require_engine()
        os.execve(argv[0], argv, compose_environment(ctx.obj.settings))
    runtime = _runtime(ctx)
    pooled = service == "pgbouncer"
    dsn = runtime.dsn("coordinator" if pooled else service, pooled=pooled)
    argv = [str(runtime.binaries("psql")), "-h", dsn.host, "-p", str(dsn.port), "-U", dsn.user,
            "-d", dsn.dbname, "-v", "ON_ERROR_STOP=1"]
    if command is not None:
        argv += ["-c", command]
    env = {**os.environ, "PGPASSFILE": str(runtime.passfile), "PGCONNECT_TIMEOUT": "5"}
    os.execve(argv[0], argv, env)


def credentials(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output."),
    backend: str | None = backend_option(),
) -> None:
    """Show how to log in: users, passwords, connection URLs."""
    if _chosen_backend(ctx, backend) == "docker":
        found = _docker(ctx).credentials()
        print_json(found) if as_json else print_mapping(found, title="ExaPG credentials (keep them secret)")
        return
    runtime = _runtime(ctx)
    s, secrets = runtime.settings, runtime.secrets
    data = {
        "database": s.postgres_db,
        "user": s.postgres_user,
        "password": secrets.postgres_password,
        "coordinator_url": runtime.dsn().url(hide_password=False),
        "pgbouncer_url": runtime.dsn(pooled=True).url(hide_password=False),
        "passfile": str(runtime.passfile),
        "management_url": f"http://127.0.0.1:{s.mgmt_backend_port}/",
        "management_user": "admin",
        "management_password": secrets.admin_password,
    }
    print_json(data) if as_json else print_mapping(data, title="ExaPG credentials (keep them secret)")


def register(app: typer.Typer) -> None:
    for command in (up, stop, restart, down, status, health, logs, sql, credentials):
        app.command()(command)
