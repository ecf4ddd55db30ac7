"""Entry point of `exapg`: the Typer app, its command groups, and error translation.

Every command module registers cheaply: the libraries a command needs (psycopg, pydantic,
cryptography, DuckDB, ...) are imported when it runs, so `exapg --help` and a quick
`exapg status` do not pay for the others (tests/unit/test_cli_imports.py).
"""

from __future__ import annotations

import os
import sys
import traceback
from functools import cached_property
from typing import TYPE_CHECKING

import typer

from exapg.cli import backup as backup_cmds
from exapg.cli import certs as certs_cmds
from exapg.cli import cluster as cluster_cmds
from exapg.cli import compose as compose_cmds
from exapg.cli import config_commands as config_cmds
from exapg.cli import exporter as exporter_cmds
from exapg.cli import images as images_cmds
from exapg.cli import roles as roles_cmds
from exapg.cli import stack as stack_cmds
from exapg.cli import tpch as tpch_cmds
from exapg.cli.output import error
from exapg.errors import ConfigurationError, ExaPGError, ExitCode, first_line

if TYPE_CHECKING:
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
        from exapg.settings import Settings

        return Settings.load()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    ctx.obj = Context(debug or bool(os.environ.get("EXAPG_DEBUG")))


for commands in (stack_cmds, roles_cmds, config_cmds, cluster_cmds, exporter_cmds, certs_cmds, compose_cmds,
                 tpch_cmds, images_cmds, backup_cmds):
    commands.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; ExaPG errors become one red line and their exit code.

    Typer (in standalone mode) already maps usage errors to exit code 2.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("EXAPG_DEBUG"))
    try:
        app(args=args, prog_name="exapg")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except ExaPGError as exc:
        if debug:
            traceback.print_exc()
        for line in _lines(exc):
            error(line)
        return int(exc.exit_code)
    except Exception as exc:
        if not _database_error(exc):
            raise
        if debug:
            traceback.print_exc()
        error(f"database error: {first_line(exc)}")
        return int(ExitCode.ERROR)
    return int(ExitCode.OK)


def _database_error(exc: Exception) -> bool:
    """A psycopg error; only a command that imported psycopg can raise one, so it is not
    imported here."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)


def _lines(exc: ExaPGError) -> list[str]:
    """One line per problem of a refused configuration, else the error's one line."""
    problems = getattr(exc, "problems", None)
    return list(problems) if isinstance(exc, ConfigurationError) and problems else [str(exc)]


if __name__ == "__main__":
    sys.exit(main())
