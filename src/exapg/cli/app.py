"""The Typer app of `exapg` and its command groups (cli/main.py runs it).

Every command module registers cheaply: the libraries a command needs (psycopg, pydantic,
cryptography, DuckDB, ...) are imported when it runs, so `exapg --help` does not pay for
them (tests/unit/test_cli_imports.py).
"""

from __future__ import annotations

import os
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
