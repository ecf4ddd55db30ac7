"""The shape of a stack: which PostgreSQL nodes exist, their roles, ports and data dirs.

Modes:
  standalone  one coordinator
  ha          a coordinator and a streaming hot standby
  cluster     a coordinator with Citus workers (and optionally a standby)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from exapg.errors import InvalidParameterError
from exapg.settings import Settings
from exapg.status import Role

MAX_WORKERS = 64
STANDBY_SLOT = "exapg_standby1"


class Mode(StrEnum):
    STANDALONE = "standalone"
    HA = "ha"
    CLUSTER = "cluster"


@dataclass(frozen=True)
class Node:
    name: str
    role: Role
    port: int
    datadir: Path
    primary: str | None = None  # the node a standby streams from
    slot: str | None = None  # replication slot on the primary

    @property
    def is_standby(self) -> bool:
        return self.primary is not None


@dataclass(frozen=True)
class Topology:
    mode: Mode
    nodes: tuple[Node, ...]

    @property
    def coordinator(self) -> Node:
        return self.nodes[0]

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes if n.role == Role.WORKER]

    @property
    def standbys(self) -> list[Node]:
        return [n for n in self.nodes if n.is_standby]

    def node(self, name: str) -> Node:
        for candidate in self.nodes:
            if candidate.name == name:
                return candidate
        names = ", ".join(n.name for n in self.nodes)
        raise InvalidParameterError(f"no node named {name!r} in this stack (nodes: {names})")

    @classmethod
    def build(
        cls, settings: Settings, mode: Mode, workers: int = 0, standby: bool | None = None
    ) -> Topology:
        """The nodes of `mode`; a standby is part of ha mode and optional in cluster mode."""
        if not 0 <= workers <= MAX_WORKERS:
            raise InvalidParameterError(f"--workers must be between 0 and {MAX_WORKERS}")
        data = settings.state_dir / "data"
        nodes = [Node("coordinator", Role.COORDINATOR, settings.coordinator_port, data / "coordinator")]
        if mode == Mode.CLUSTER:
            nodes += [
                Node(f"worker{i}", Role.WORKER, settings.worker_port(i), data / f"worker{i}")
                for i in range(1, workers + 1)
            ]
        if standby if standby is not None else mode == Mode.HA:
            nodes.append(
                Node("standby", Role.STANDBY, settings.standby_port, data / "standby",
                     primary="coordinator", slot=STANDBY_SLOT)
            )
        return cls(mode, tuple(nodes))
