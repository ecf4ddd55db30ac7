"""Entry point of `exapg`: the Typer app, its command groups, and error translation."""

from __future__ import annotations

import os
import sys
import traceback
from functools import cached_property

import click
import typer

from exapg.cli import config as config_cmds
from exapg.cli import stack as stack_cmds
from exapg.cli.output import error
from exapg.errors import ExaPGError, ExitCode
from exapg.settings import Settings

app = typer.Typer(
    name="exapg",
    help="ExaPG: stand up and operate a PostgreSQL analytics platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Context:
    """Per-invocation state: the settings are built once, on first use."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug

    @cached_property
    def settings(self) -> Settings:
        return Settings.load()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    ctx.obj = Context(debug or bool(os.environ.get("EXAPG_DEBUG")))


stack_cmds.register(app)
config_cmds.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; ExaPG errors become one red line and their exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("EXAPG_DEBUG"))
    try:
        result = app(args=args, prog_name="exapg", standalone_mode=False)
    except ExaPGError as exc:
        if debug:
            traceback.print_exc()
        error(str(exc))
        return int(exc.exit_code)
    except click.exceptions.UsageError as exc:
        exc.show()
        return int(ExitCode.INVALID_PARAMETERS)
    except (click.exceptions.Abort, KeyboardInterrupt):
        error("interrupted: run the same command again to finish the job")
        return 130
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
