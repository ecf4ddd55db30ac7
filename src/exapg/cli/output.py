"""One printer for every status-like command: a rich table, or JSON with --json."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence

from rich.console import Console
from rich.table import Table

# Piped output (logs, CI) gets wide lines rather than rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(rows: Sequence[Mapping[str, object]], columns: Iterable[str], title: str | None = None) -> None:
    table = Table(title=title, show_edge=False, header_style="bold")
    cols = list(columns)
    for col in cols:
        table.add_column(col.upper(), no_wrap=col != "detail")
    for row in rows:
        table.add_row(*(_cell(row.get(col)) for col in cols))
    console.print(table)


def print_mapping(data: Mapping[str, object], title: str | None = None) -> None:
    table = Table(title=title, show_header=False, show_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        table.add_row(key, _cell(value))
    console.print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "[green]yes[/]" if value else "[red]no[/]"
    if value == "running":
        return "[green]running[/]"
    if value in ("stopped", "failed"):
        return f"[red]{value}[/]"
    return str(value).replace("[", "\\[")


def error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)


def info(message: str) -> None:
    console.print(message, soft_wrap=True)
