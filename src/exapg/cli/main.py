"""Entry point of `exapg`: runs a command and turns ExaPG errors into one line and an exit code.

A plain `exapg status` or `exapg health` runs without Typer (cli/quick.py), so the two
commands scripts call in a loop answer at once; everything else goes through the Typer app
in cli/app.py.
"""

from __future__ import annotations

import os
import sys
import traceback

from exapg.cli import quick
from exapg.cli.output import error
from exapg.errors import ConfigurationError, ExaPGError, ExitCode, first_line


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; ExaPG errors become one red line and their exit code.

    Typer (in standalone mode) already maps usage errors to exit code 2.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("EXAPG_DEBUG"))
    try:
        call = quick.parse(args)
        if call is not None:
            return quick.run(call)
        from exapg.cli.app import app

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
