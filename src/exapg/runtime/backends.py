"""The one place a backend is chosen: `runtime_for` gives the CLI (and anything else) a Runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from exapg.errors import InvalidParameterError
from exapg.stack import Progress, quiet

if TYPE_CHECKING:
    from exapg.runtime.base import Runtime
    from exapg.settings import Settings

Backend = Literal["local", "docker"]
BACKENDS: tuple[Backend, ...] = ("local", "docker")


def backend_name(settings: Settings, chosen: str | None = None) -> Backend:
    """`chosen` (the --backend option) or EXAPG_BACKEND; anything else is refused (exit 2)."""
    name = chosen or settings.backend
    if name == "local":
        return "local"
    if name == "docker":
        return "docker"
    raise InvalidParameterError(f"--backend must be local or docker, not {name!r}")


def runtime_for(settings: Settings, chosen: str | None = None, progress: Progress = quiet) -> Runtime:
    """The backend's runtime. Each is imported only when chosen: the Docker one pulls in
    Compose's helpers, the local one the supervisor."""
    if backend_name(settings, chosen) == "docker":
        from exapg.runtime.docker import DockerRuntime

        return DockerRuntime(settings, progress)
    from exapg.runtime.local import LocalRuntime

    return LocalRuntime(settings, progress)
