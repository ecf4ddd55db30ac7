"""Configured vs observed roles and the split-brain rule, on reports made by hand."""

from __future__ import annotations

from pathlib import Path

from exapg.cluster.probe import NodeReport
from exapg.cluster.split_brain import (
    ConfiguredRole,
    ObservedRole,
    Writable,
    configured_role,
    observed_role,
    replication_groups,
    split_brain,
)
from exapg.cluster.topology import Mode, Node, Topology
from exapg.status import Role

DATA = Path("/nonexistent")
HA = Topology(Mode.HA, (
    Node("coordinator", Role.COORDINATOR, 5432, DATA),
    Node("standby", Role.STANDBY, 5440, DATA, primary="coordinator"),
))


def report(name: str, state: str, timeline: int | None = 1) -> NodeReport:
    down = state == "down"
    return NodeReport(name, "coordinator", "127.0.0.1", 5432, not down, state,
                      timeline=None if down else timeline)


def test_configured_roles_come_from_the_primary_field_not_the_name():
    assert [configured_role(n) for n in HA.nodes] == [ConfiguredRole.PRIMARY, ConfiguredRole.STANDBY]
    # after a switchover the node named coordinator streams from the one named standby
    switched = Topology(Mode.HA, (
        Node("coordinator", Role.COORDINATOR, 5432, DATA, primary="standby"),
        Node("standby", Role.STANDBY, 5440, DATA),
    ))
    assert [configured_role(n) for n in switched.nodes] == [ConfiguredRole.STANDBY, ConfiguredRole.PRIMARY]
    assert replication_groups(switched) == [["coordinator", "standby"]]


def test_observed_roles():
    assert observed_role(report("a", "primary")) == ObservedRole.PRIMARY
    assert observed_role(report("a", "standby")) == ObservedRole.STANDBY
    assert observed_role(report("a", "down")) == ObservedRole.DOWN


def test_a_healthy_pair_or_a_failover_is_no_split_brain():
    assert split_brain(HA, [report("coordinator", "primary"), report("standby", "standby")]) == []
    # the old primary is gone and the standby took over: one writable node
    assert split_brain(HA, [report("coordinator", "down"), report("standby", "primary", 2)]) == []


def test_two_writable_nodes_of_one_pair_are_a_split_brain():
    reports = [report("coordinator", "primary", 1), report("standby", "primary", 2)]
    assert split_brain(HA, reports) == [Writable("coordinator", 1), Writable("standby", 2)]


def test_citus_workers_are_primaries_of_their_own():
    cluster = Topology(Mode.CLUSTER, (
        Node("coordinator", Role.COORDINATOR, 5432, DATA),
        Node("worker1", Role.WORKER, 5433, DATA),
        Node("worker2", Role.WORKER, 5434, DATA),
        Node("standby", Role.STANDBY, 5440, DATA, primary="coordinator"),
    ))
    assert replication_groups(cluster) == [["coordinator", "standby"], ["worker1"], ["worker2"]]
    healthy = [report("coordinator", "primary"), report("worker1", "primary"),
               report("worker2", "primary"), report("standby", "standby")]
    assert split_brain(cluster, healthy) == []
    split = [*healthy[:3], report("standby", "primary", 2)]
    assert split_brain(cluster, split) == [Writable("coordinator", 1), Writable("standby", 2)]


def test_a_loop_of_standbys_is_one_group():
    loop = Topology(Mode.HA, (
        Node("a", Role.COORDINATOR, 1, DATA, primary="b"),
        Node("b", Role.STANDBY, 2, DATA, primary="a"),
    ))
    assert replication_groups(loop) == [["a", "b"]]
