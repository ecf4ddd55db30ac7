"""Configured and observed roles, and the split brain they can disagree into.

A node's configured role comes from the topology (a node that names its `primary` is
configured as a standby); its observed role from what it answered (cluster/probe.py). A
standby promoted by hand (`pg_ctl promote`) while its primary still runs leaves two
writable primaries on two timelines: a split brain. Workers of a Citus cluster are
primaries each of their own, so writable nodes count only within one replication group (a
primary and the standbys that stream from it, directly or in a chain).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from exapg.cluster.topology import Node, Topology

if TYPE_CHECKING:
    from exapg.cluster.probe import NodeReport


class ConfiguredRole(StrEnum):
    PRIMARY = "primary"
    STANDBY = "standby"


class ObservedRole(StrEnum):
    PRIMARY = "primary"  # answers and is writable (not in recovery)
    STANDBY = "standby"  # answers and is in recovery
    DOWN = "down"


@dataclass(frozen=True)
class Writable:
    """A writable node of a split brain and the timeline it writes."""

    name: str
    timeline: int | None


def configured_role(node: Node) -> ConfiguredRole:
    return ConfiguredRole.STANDBY if node.is_standby else ConfiguredRole.PRIMARY


def observed_role(report: NodeReport) -> ObservedRole:
    if report.state == "down":
        return ObservedRole.DOWN
    return ObservedRole.STANDBY if report.state == "standby" else ObservedRole.PRIMARY


def replication_groups(topology: Topology) -> list[list[str]]:
    """Node names grouped by the primary at the top of their `primary` chain, in topology order."""
    primary_of = {n.name: n.primary for n in topology.nodes}

    def top(name: str) -> str:
        seen = [name]
        while (up := primary_of.get(seen[-1])) is not None and up not in seen:
            seen.append(up)
        return min(seen) if up in seen else seen[-1]  # a loop of standbys: any one stable name

    groups: dict[str, list[str]] = {}
    for node in topology.nodes:
        groups.setdefault(top(node.name), []).append(node.name)
    return list(groups.values())


def split_brain(topology: Topology, reports: list[NodeReport]) -> list[Writable]:
    """The writable nodes of every replication group with more than one of them, in topology
    order; [] when no group has two primaries."""
    by_name = {r.name: r for r in reports}
    found: list[Writable] = []
    for group in replication_groups(topology):
        writable = [by_name[name] for name in group
                    if name in by_name and observed_role(by_name[name]) == ObservedRole.PRIMARY]
        if len(writable) > 1:
            found += [Writable(r.name, r.timeline) for r in writable]
    return found


def explain(primary: str, writable: list[Writable]) -> dict[str, str]:
    """Node -> why it is unhealthy in a split brain, with its timeline. The configured
    primary is the one pgBouncer serves; the other writable nodes are rejoined to it."""
    if not writable:
        return {}
    timelines = {w.name: w.timeline for w in writable}

    def on(name: str) -> str:
        return f" on timeline {timelines[name]}" if timelines.get(name) is not None else ""

    strays = [w.name for w in writable if w.name != primary]
    found = {name: f"writable{on(name)}, but configured as standby of {primary}: run 'exapg rejoin {name}'"
             for name in strays}
    others = ", ".join(f"{name}{on(name)}" for name in strays)
    found[primary] = (f"primary{on(primary)} (pgBouncer serves it), but {others} accepts writes too "
                      f"(split brain): run 'exapg rejoin {strays[0]}'")
    return found
