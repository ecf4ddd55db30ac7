"""The shape of a stack: which PostgreSQL nodes exist, their roles, ports and data dirs.

Modes:
  standalone  one coordinator
  ha          a coordinator and a streaming hot standby
  cluster     a coordinator with Citus workers (and optionally a standby)

A node's name, port and data directory never change; which node of the pair is the
primary is recorded state (`StackState.primary`), changed only by a switchover or a
failover. The primary is always `nodes[0]` (`Topology.coordinator`), the other node
follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from exapg.errors import InvalidParameterError
from exapg.status import Role

if TYPE_CHECKING:  # only named in signatures: `Mode` stays cheap to import for the CLI
    from exapg.settings import Settings

MAX_WORKERS = 64
STANDBY_SLOT = "exapg_standby1"
PAIR = ("coordinator", "standby")  # the two nodes that can trade the primary's role


def slot_name(node: str) -> str:
    """The replication slot a standby streams through, on its primary (named after the
    standby; the standby node keeps the name it always had)."""
    return STANDBY_SLOT if node == "standby" else f"exapg_{node}"


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
        cls, settings: Settings, mode: Mode, workers: int = 0, standby: bool | None = None,
        primary: str = "coordinator",
    ) -> Topology:
        """The nodes of `mode`; a standby is part of ha mode and optional in cluster mode.
        `primary` is the node of the pair that is primary now (first, role coordinator)."""
        if not 0 <= workers <= MAX_WORKERS:
            raise InvalidParameterError(f"--workers must be between 0 and {MAX_WORKERS}")
        with_standby = standby if standby is not None else mode == Mode.HA
        if primary not in PAIR or (primary != "coordinator" and (mode != Mode.HA or not with_standby)):
            raise InvalidParameterError(f"node {primary!r} cannot be the primary of a {mode} stack")
        data = settings.state_dir / "data"
        ports = {"coordinator": settings.coordinator_port, "standby": settings.standby_port}
        follower = PAIR[1] if primary == PAIR[0] else PAIR[0]
        nodes = [Node(primary, Role.COORDINATOR, ports[primary], data / primary)]
        if mode == Mode.CLUSTER:
            nodes += [
                Node(f"worker{i}", Role.WORKER, settings.worker_port(i), data / f"worker{i}")
                for i in range(1, workers + 1)
            ]
        if with_standby:
            nodes.append(
                Node(follower, Role.STANDBY, ports[follower], data / follower,
                     primary=primary, slot=slot_name(follower))
            )
        return cls(mode, tuple(nodes))
