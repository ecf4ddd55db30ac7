"""`exapg status` and `exapg health` without Typer.

These two are what scripts and monitoring call in a loop, so they must answer at once
(bench/cli). Typer and its Click take about half of their start-up, so `main` hands them
here when the command line is one of their plain forms:

    exapg [--debug] status|health [--json] [--backend NAME | --backend=NAME]

Anything else (`--help`, an unknown or repeated option, a stray argument) goes through
Typer, which prints its usage errors as it does for every command. Both ways run the same
`report_status` / `report_health` below: the Typer commands in cli/stack.py call them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from exapg.cli.output import error, info, print_json, print_table
from exapg.errors import ExitCode

if TYPE_CHECKING:
    from exapg.settings import Settings
    from exapg.status import ServiceStatus

STATUS_COLUMNS = ("name", "role", "port", "pid", "state", "healthy", "detail")
COMMANDS = ("status", "health")


@dataclass(frozen=True)
class Call:
    command: str
    as_json: bool = False
    backend: str | None = None  # main() itself reads --debug, for every command


def parse(args: list[str]) -> Call | None:
    """The call `args` make, when they are a plain status or health; else None (Typer's)."""
    rest = args[1:] if args[:1] == ["--debug"] else list(args)
    if not rest or rest[0] not in COMMANDS:
        return None
    command, options = rest[0], rest[1:]
    as_json, backend, seen = False, None, set()
    while options:
        word = options.pop(0)
        name, _, value = word.partition("=")
        if name in seen:
            return None
        seen.add(name)
        if word == "--json":
            as_json = True
        elif word == "--backend" and options and not options[0].startswith("-"):
            backend = options.pop(0)
        elif name == "--backend" and value:
            backend = value
        else:
            return None
    return Call(command, as_json, backend)


def run(call: Call) -> int:
    from exapg.settings import Settings

    settings = Settings.load()
    if call.command == "status":
        return report_status(settings, call.backend, call.as_json)
    return report_health(settings, call.backend, call.as_json)


def statuses(settings: Settings, backend: str | None) -> list[ServiceStatus]:
    from exapg.runtime.backends import runtime_for

    return runtime_for(settings, backend).status()


def print_status(found: list[ServiceStatus], as_json: bool) -> None:
    rows = [s.to_dict() for s in found]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, STATUS_COLUMNS)


def report_status(settings: Settings, backend: str | None, as_json: bool) -> int:
    print_status(statuses(settings, backend), as_json)
    return int(ExitCode.OK)


def report_health(settings: Settings, backend: str | None, as_json: bool) -> int:
    """0 only when every service passes its health check."""
    found = statuses(settings, backend)
    failing = [s for s in found if not s.healthy]
    healthy = bool(found) and not failing
    if as_json:
        print_json({"healthy": healthy, "services": [s.to_dict() for s in found]})
    elif not found:
        error("no service of this stack is running: start it with 'exapg up'")
    elif failing:
        for s in failing:
            error(f"{s.name} is unhealthy: {s.state}, {s.detail}")
    else:
        info(f"[green]healthy[/]: {len(found)} services pass their checks")
    return int(ExitCode.OK if healthy else ExitCode.ERROR)
