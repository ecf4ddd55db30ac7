"""The small interface both runtimes implement, and the description of a supervised program."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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


class Runtime(Protocol):
    def up(self, mode: str | None = None, workers: int | None = None) -> list[str]: ...

    def stop(self) -> list[str]: ...

    def down(self, volumes: bool = False) -> list[str]: ...

    def status(self) -> list[ServiceStatus]: ...

    def logs(
        self, service: str | None, follow: bool, since: float | None, timestamps: bool
    ) -> Iterator[str]: ...

    def scale(self, workers: int) -> list[str]: ...
