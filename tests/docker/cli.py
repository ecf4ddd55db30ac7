"""The command groups of issue 5 mounted on a Typer app the way cli/main.py mounts them,
with ExaPG errors translated to exit codes as `exapg` does."""

from __future__ import annotations

from dataclasses import dataclass

import typer
from typer.testing import CliRunner

from exapg.cli import certs as certs_cmd
from exapg.cli import compose as compose_cmd
from exapg.errors import ExaPGError
from exapg.settings import Settings


@dataclass
class Outcome:
    code: int
    output: str


def run(args: list[str], environ: dict[str, str]) -> Outcome:
    app = typer.Typer()

    class Context:
        settings = Settings.load(environ={"EXAPG_ENV_FILE": "/nonexistent/.env", **environ})

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = Context()

    compose_cmd.register(app)
    certs_cmd.register(app)
    result = CliRunner().invoke(app, args, env=environ)
    if isinstance(result.exception, ExaPGError):
        return Outcome(int(result.exception.exit_code), str(result.exception))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.output)
