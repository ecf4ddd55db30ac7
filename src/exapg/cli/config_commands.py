"""`exapg config show|validate`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from exapg.cli.output import console, error, print_json, print_mapping
from exapg.errors import ConfigurationError, ExitCode

if TYPE_CHECKING:
    from exapg.settings import Settings

config_app = typer.Typer(help="Show and check the effective settings.", no_args_is_help=True)


def effective(settings: Settings) -> dict[str, object]:
    """Every setting by its variable name; secrets masked, never printed."""
    data: dict[str, object] = {}
    for name, field in type(settings).model_fields.items():
        if name == "worker_ports":
            continue
        key = field.alias or name.upper()
        value = getattr(settings, name)
        if "PASSWORD" in key or "SECRET" in key:
            value = "(set, hidden)" if value is not None else "(generated in local mode)"
        data[key] = str(value) if value is not None else None
    data.update({k: str(v) for k, v in settings.named_ports().items() if k.startswith("WORKER")})
    data["EXAPG_STATE_DIR"] = str(settings.state_dir)
    return data


@config_app.command("show")
def show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Print the effective settings (secrets masked)."""
    data = effective(ctx.obj.settings)
    print_json(data) if as_json else print_mapping(data)


@config_app.command("validate")
def validate(ctx: typer.Context) -> None:
    """Report every problem of the settings, one per line; exit 5 when there is any."""
    from exapg.config_check import problems

    settings = ctx.obj.settings
    try:
        found = problems(settings, ours=_own_ports(settings))
    except ConfigurationError as exc:
        found = exc.problems or [str(exc)]
    for line in found:
        error(line)
    if found:
        raise typer.Exit(int(ExitCode.CONFIGURATION))
    console.print("[green]settings are valid[/]")


def _own_ports(settings: Settings) -> set[int]:
    """Ports the local stack's own services hold: not a conflict with itself."""
    if settings.backend == "docker":
        return set()
    from exapg.runtime.preflight import own_ports
    from exapg.stack import Stack

    return own_ports(Stack(settings))


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
