"""The small interface both runtimes implement, and the description of a supervised program."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from exapg.cluster.topology import Mode
    from exapg.postgres.conn import Dsn
    from exapg.settings import Settings
    from exapg.status import Role, ServiceStatus


@dataclass(frozen=True)
class Program:
    """A long-running process the local runtime keeps under its process supervisor.

    `health_url` is fetched with HTTP GET for the health check; without it the
    service is checked with pg_isready on `port` (pgBouncer).
    """

    name: str
    role: Role
    command: Sequence[str]
    port: int | None = None
    health_url: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    directory: Path | None = None
    stop_signal: str = "TERM"
    detail: str | None = None  # what `status` says of it while it runs healthy under the supervisor


class Runtime(Protocol):
    """What every backend does, with the signatures both implement (the type checker holds
    them to it: runtime/backends.py). A verb a backend cannot do raises
    InvalidParameterError (exit 2) saying so; it never acts on the other backend."""

    settings: Settings

    def up(self, mode: Mode | None = None, workers: int | None = None, standby: bool | None = None
           ) -> list[str]: ...

    def stop(self) -> list[str]: ...

    def down(self, volumes: bool = False) -> list[str]: ...

    def restart(self) -> list[str]: ...

    def status(self) -> list[ServiceStatus]: ...

    def logs(
        self, service: str | None, follow: bool, since: float | None, timestamps: bool
    ) -> Iterator[str]: ...

    def scale(self, workers: int, rebalance: bool = True) -> list[str]: ...

    def rebalance(self, wait: bool = True) -> list[str]: ...

    def require_cluster(self, command: str) -> object: ...

    def coordinator_dsn(self) -> Dsn: ...

    def psql_command(self, service: str, command: str | None, interactive: bool
                     ) -> tuple[list[str], dict[str, str]]: ...

    def credentials(self) -> dict[str, str | None]: ...
