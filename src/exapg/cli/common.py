"""What every command module shares: getting the runtime, the --backend option, reporting.

Commands get their runtime here and nowhere else: `runtime(ctx, backend)` for verbs both
backends have, `local_runtime(ctx)` for commands only the local runtime has, which
refuse the Docker backend (exit 2) rather than act on a local stack instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from exapg.cli.output import console, info
from exapg.errors import InvalidParameterError

if TYPE_CHECKING:
    from exapg.runtime.base import Runtime
    from exapg.runtime.local import LocalRuntime
    from exapg.stack import Progress

BACKEND_HELP = "local (this machine) or docker (Docker Compose). Default: EXAPG_BACKEND, else local."


def backend_option() -> Any:
    return typer.Option(None, "--backend", help=BACKEND_HELP)


def chosen_backend(ctx: typer.Context, backend: str | None = None) -> str:
    """--backend (given to this command, or found in its parameters), else EXAPG_BACKEND."""
    from exapg.runtime.backends import backend_name

    return backend_name(ctx.obj.settings, backend or ctx.params.get("backend"))


def runtime(ctx: typer.Context, backend: str | None = None, progress: bool = False) -> Runtime:
    """The chosen backend's runtime; with `progress`, its steps show on a terminal's spinner."""
    from exapg.runtime.backends import runtime_for

    return runtime_for(ctx.obj.settings, chosen_backend(ctx, backend), _progress(ctx, progress))


def local_runtime(ctx: typer.Context, progress: bool = False) -> LocalRuntime:
    """The local runtime, for commands that have no Docker implementation."""
    from exapg.runtime.local import LocalRuntime

    if chosen_backend(ctx) == "docker":
        command = ctx.command_path.removeprefix("exapg ").strip() or ctx.info_name
        raise InvalidParameterError(
            f"'exapg {command}' works on the local runtime only and the backend is docker (EXAPG_BACKEND or "
            "--backend): use docker compose for it (docs/docker.md), or EXAPG_BACKEND=local")
    return LocalRuntime(ctx.obj.settings, _progress(ctx, progress))


def _progress(ctx: typer.Context, wanted: bool) -> Progress:
    """A spinner line for long work on a terminal, when `wanted`; nothing when piped."""
    from exapg.stack import quiet

    if not wanted or not console.is_terminal:
        return quiet
    status = console.status("working…")
    ctx.obj.spinner = status
    return lambda text: status.update(text)


@contextmanager
def spinner(ctx: typer.Context) -> Iterator[None]:
    """Shows the spinner `runtime(..., progress=True)` made, while the work runs."""
    status = getattr(ctx.obj, "spinner", None)
    if status is None:
        yield
        return
    with status:
        yield


def report(actions: list[str], nothing: str) -> None:
    for line in actions:
        info(f"  • {line}")
    if not actions:
        info(nothing)
