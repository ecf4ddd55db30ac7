"""Backups and point-in-time restores of the local stack (pgBackRest): backup, backup list,
backup verify, backup restore-point, restore."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from exapg.cli.common import local_runtime, report, spinner
from exapg.cli.output import info, print_json, print_table
from exapg.errors import ExaPGError, InvalidParameterError

if TYPE_CHECKING:
    from exapg.backup.pgbackrest import BackupType, Target

LIST_COLUMNS = ("stanza", "label", "type", "stopped", "duration", "size", "repository", "wal")

app = typer.Typer(help="Backups with point-in-time recovery (pgBackRest, local runtime).",
                  invoke_without_command=True)


def _size(value: int) -> str:
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if amount < 1024 or unit == "TB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"


@app.callback()
def backup(
    ctx: typer.Context,
    kind: str = typer.Option("incr", "--type", help="full, diff (since the last full) or incr (since the last "
                             "backup). The first backup is always full."),
) -> None:
    """Back up every primary node (coordinator, workers) into the backup repository."""
    if ctx.invoked_subcommand is not None:
        return
    if kind not in ("full", "diff", "incr"):
        raise InvalidParameterError(f"--type {kind!r}: use full, diff or incr")
    from exapg.runtime import backup as backups

    runtime = local_runtime(ctx, progress=True)
    with spinner(ctx):
        taken, actions = backups.take(runtime.stack, _backup_type(kind))
    for stanza, done in taken:
        info(f"{stanza}: {done.type} backup {done.label}: {_size(done.size)} "
             f"({_size(done.repository_size)} in the repository), {done.duration:.0f}s, "
             f"WAL {done.wal_start} to {done.wal_stop}")
    report(actions, "")


def _backup_type(kind: str) -> BackupType:
    return "full" if kind == "full" else "diff" if kind == "diff" else "incr"


@app.command("list")
def list_backups(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """The backups in the repository and what they can restore to (earliest and latest time)."""
    from exapg.runtime import backup as backups

    runtime = local_runtime(ctx)
    found = backups.listing(runtime.stack)
    points = backups.restore_points(runtime.stack)
    if as_json:
        print_json({"repository": runtime.settings.backup_repo_path,
                    "stanzas": [backups.as_json(i, r) for i, r in found],
                    "restore_points": [{"name": p.name, "created": backups.iso(p.created), "lsn": p.lsn,
                                        "cluster": p.cluster} for p in points]})
        return
    rows = [{"stanza": i.name, "label": b.label, "type": b.type, "stopped": backups.iso(b.stopped),
             "duration": f"{b.duration:.0f}s", "size": _size(b.size), "repository": _size(b.repository_size),
             "wal": f"{b.wal_start} to {b.wal_stop}"} for i, _ in found for b in i.backups]
    print_table(rows, LIST_COLUMNS, title=f"Backups in {runtime.settings.backup_repo_path}")
    for stanza, restorable in found:
        if restorable.earliest_time is None:
            info(f"{stanza.name}: no backup yet ({stanza.status}): take one with 'exapg backup'")
        else:
            info(f"{stanza.name}: restorable from {backups.iso(restorable.earliest_time)} to about "
                 f"{backups.iso(restorable.latest_time)} (archived WAL {restorable.wal_min} to {restorable.wal_max})")
    for point in points:
        across = " (every node)" if point.cluster else ""
        info(f"restore point {point.name}{across}: {backups.iso(point.created)}, LSN {point.lsn}: "
             f"'exapg restore --to-name {point.name}'")


@app.command()
def verify(ctx: typer.Context) -> None:
    """Check every file of the repository against its checksum (pgBackRest's verify)."""
    from exapg.runtime import backup as backups

    runtime = local_runtime(ctx, progress=True)
    with spinner(ctx):
        results = backups.verify(runtime.stack)
    damaged = [r for r in results if not r.ok]
    if damaged:
        first = damaged[0]
        problems = [p for r in damaged for p in r.problems]
        named = problems[0] if problems else "status: error"
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise ExaPGError(f"backup repository damaged: {first.stanza}: {named}{more}: take a new full backup "
                         f"('exapg backup --type full'); details in {runtime.stack.log_dir / 'pgbackrest'}")
    for result in results:
        info(f"{result.stanza}: every backup and archived WAL segment passes its checksum")


@app.command("restore-point")
def restore_point(ctx: typer.Context, name: str = typer.Argument(..., help="Name to restore to later.")) -> None:
    """Create a named restore point (in cluster mode one consistent point across every node)."""
    from exapg.backup.pgbackrest import check_name
    from exapg.runtime import backup as backups

    runtime = local_runtime(ctx)
    report(backups.restore_point(runtime.stack, check_name(name)), "")


def restore(
    ctx: typer.Context,
    latest: str | None = typer.Argument(None, metavar="[latest]", help="Restore to the end of the archived WAL."),
    to: str | None = typer.Option(None, "--to", help="A time (ISO 8601; no zone: UTC)."),
    to_lsn: str | None = typer.Option(None, "--to-lsn", help="An LSN of the coordinator's WAL (not in cluster mode)."),
    to_name: str | None = typer.Option(None, "--to-name", help="A restore point ('exapg backup restore-point')."),
    backup_set: str | None = typer.Option(None, "--set", help="Start from this backup (default: pgBackRest "
                                          "picks the newest one before the target)."),
    yes: bool = typer.Option(False, "--yes", help="Go ahead on a running stack (it is stopped)."),
) -> None:
    """Restore the stack to a point in time: the coordinator (and workers) from the backups,
    then a new standby cloned from it. The data directories before it are kept aside."""
    from exapg.runtime import backup as backups

    target = _target(latest, to, to_lsn, to_name)
    runtime = local_runtime(ctx, progress=True)
    stack = runtime.stack
    if backups.running(stack) and not yes:
        raise InvalidParameterError(f"stack '{stack.name}' is running: 'exapg restore' stops it and replaces its "
                                    "data with the restored copy; add --yes to go ahead (nothing was changed)")
    with spinner(ctx):
        actions, restored = runtime.restore(target, backup_set)
    report(actions, "")
    for done in restored:
        info(done.line())


def _target(latest: str | None, to: str | None, to_lsn: str | None, to_name: str | None) -> Target:
    from exapg.backup.pgbackrest import Target, check_name, parse_time

    if latest not in (None, "latest"):
        raise InvalidParameterError(f"unexpected argument {latest!r}: say 'latest', --to, --to-lsn or --to-name")
    given = [t for t in (
        Target("latest") if latest else None,
        Target("time", parse_time(to)) if to else None,
        Target("lsn", to_lsn) if to_lsn else None,
        Target("name", check_name(to_name)) if to_name else None,
    ) if t is not None]
    if len(given) != 1:
        raise InvalidParameterError("say what to restore to, once: latest, --to TIME, --to-lsn LSN or --to-name NAME")
    return given[0]


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="backup")
    main.command()(restore)
