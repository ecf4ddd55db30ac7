"""The command groups of issue 5 mounted on a Typer app the way cli/main.py mounts them,
with ExaPG errors translated to exit codes as `exapg` does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def run(args: list[str], environ: dict[str, str], capture: bool = False) -> Outcome:
    """`capture`: run in a child process so the output of docker compose is captured too."""
    if capture:
        return _run_child(args, environ)
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


def _run_child(args: list[str], environ: dict[str, str]) -> Outcome:
    import os
    import subprocess
    import sys

    env = {**os.environ, **environ}
    result = subprocess.run([sys.executable, "-m", "tests.docker.cli", *args], env=env, capture_output=True,
                            text=True, timeout=120, check=False, cwd=Path(__file__).resolve().parents[2])
    return Outcome(result.returncode, result.stdout + result.stderr)


if __name__ == "__main__":
    import os
    import sys

    done = run(sys.argv[1:], {k: v for k, v in os.environ.items()})
    if done.code and done.output:
        print(done.output, file=sys.stderr)
    sys.exit(done.code)
