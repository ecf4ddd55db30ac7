"""`exapg compose dev|prod|full [docker compose args...]`: the Docker specification's file combinations."""

from __future__ import annotations

import typer

from exapg.runtime.compose_profiles import EXTRAS, PROFILES


def compose(
    ctx: typer.Context,
    profile: str = typer.Argument(..., help=f"One of: {', '.join(PROFILES)}."),
    args: list[str] = typer.Argument(None, help="Arguments for docker compose (default: config)."),
    add: list[str] = typer.Option([], "--with", help=f"Add compose files: {', '.join(EXTRAS)} (repeatable)."),
) -> None:
    """Run docker compose on the specification's files: dev = base + override, prod = base + prod,
    full = base + monitoring + mgmt. Example: exapg compose prod --with ha up -d"""
    from exapg import config_check
    from exapg.runtime.docker import DockerCompose

    runner = DockerCompose(ctx.obj.settings, profile, tuple(add))
    argv = list(args or ["config"])
    if [a for a in argv if not a.startswith("-")][:1] == ["up"]:
        config_check.require_valid(ctx.obj.settings, backend="docker")
    result = runner.run(argv)
    raise typer.Exit(result.returncode)


def register(app: typer.Typer) -> None:
    app.command(
        "compose",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(compose)
