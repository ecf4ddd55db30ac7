"""State vocabulary shared by the CLI, the runtimes, the exporter and the API.

The string values are part of ExaPG's interface (`status --json`, the API, metrics
labels): they never change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class ServiceState(StrEnum):
    RUNNING = "running"
    STARTING = "starting"
    STOPPED = "stopped"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Role(StrEnum):
    COORDINATOR = "coordinator"
    WORKER = "worker"
    STANDBY = "standby"
    POOLER = "pooler"
    EXPORTER = "exporter"
    MONITORING = "monitoring"
    API = "api"


@dataclass(frozen=True)
class ServiceStatus:
    """One line of `exapg status`; `to_dict()` is the `--json` shape."""

    name: str
    role: Role
    port: int | None
    pid: int | None
    state: ServiceState
    healthy: bool
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["role"] = str(self.role)
        data["state"] = str(self.state)
        return data
