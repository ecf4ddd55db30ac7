"""What a local stack should become, and how nodes join and leave it.

The decisions (the desired state, which nodes retire and in which order) are plain
functions of the settings and states, tested without a server; the steps that act
(registering workers with Citus, draining a worker before it stops) take the Stack.
"""

from __future__ import annotations

from exapg.cluster import citus
from exapg.cluster.topology import Mode, Node, Topology
from exapg.credentials import Secrets
from exapg.errors import InvalidParameterError
from exapg.postgres import bootstrap as sql_steps
from exapg.postgres.conn import connect
from exapg.runtime import nodes
from exapg.stack import LOOPBACK, Stack
from exapg.state import StackState

DEFAULT_WORKERS = 2


def desired_state(
    project: str, previous: StackState | None, mode: Mode | None, workers: int | None,
    standby: bool | None,
) -> StackState:
    """The state `up` brings the stack to: what is asked, else what the stack was, else ha.

    Workers only exist in cluster mode: as many as asked, else as many as the cluster had,
    else two. A standby is part of ha mode, and kept in cluster mode when the stack had one.
    An unchanged request returns `previous` itself."""
    chosen = mode or (previous.mode if previous else Mode.HA)
    was_cluster = previous is not None and previous.mode == Mode.CLUSTER
    count = workers if workers is not None else (previous.workers if previous and was_cluster else DEFAULT_WORKERS)
    if chosen != Mode.CLUSTER:
        count = 0
    if standby is None:
        standby = chosen == Mode.HA or bool(previous and previous.standby and chosen == previous.mode)
    if previous and (previous.mode, previous.workers, previous.standby) == (chosen, count, standby):
        return previous
    if previous and previous.primary != "coordinator":
        raise InvalidParameterError(
            f"node {previous.primary} is the primary since a switchover or failover: run 'exapg switchover' "
            f"to make coordinator primary again before changing the stack's shape")
    return StackState.new(project, chosen, count, standby)


def retiring(old: Topology | None, new: Topology) -> list[Node]:
    """Nodes of the old topology that the new one no longer has, last worker first (the
    coordinator never retires)."""
    if old is None:
        return []
    keep = {node.name for node in new.nodes}
    return [node for node in reversed(old.nodes[1:]) if node.name not in keep]


def retire(stack: Stack, leaving: list[Node], topology: Topology, secrets: Secrets) -> list[str]:
    """Scale in: drain a worker off Citus first (refusing rather than losing a shard),
    drop a standby's slot; then stop the node and set its data directory aside."""
    actions = []
    for node in leaving:
        if not node.is_standby:
            stack.progress(f"{node.name}: draining its shards to the other workers")
            with connect(stack.dsn(topology.coordinator, secrets=secrets), statement_timeout_ms=0) as conn:
                citus.remove_worker(conn, LOOPBACK, node.port)
        nodes.stop(stack, node)
        if node.is_standby:
            # Once the standby is stopped its slot is inactive: drop it, or it keeps WAL for ever.
            with connect(stack.dsn(topology.coordinator, secrets=secrets)) as conn:
                sql_steps.drop_slot(conn, node.slot or node.name)
        aside = nodes.set_aside(node)
        verb = "stopped" if node.is_standby else "drained, removed and stopped"
        actions.append(f"{node.name}: {verb} (data kept in {aside})")
    return actions


def register_workers(stack: Stack, topology: Topology, secrets: Secrets) -> list[str]:
    """Extension on every worker, coordinator host set, every worker registered."""
    actions = []
    for worker in topology.workers:
        actions += nodes.prepare_database(stack, worker, topology, secrets)
    with connect(stack.dsn(topology.coordinator, secrets=secrets)) as conn:
        citus.set_auth(conn, stack.settings.postgres_user, secrets.postgres_password)
        citus.set_coordinator(conn, LOOPBACK, topology.coordinator.port)
        for worker in topology.workers:
            if citus.register_worker(conn, LOOPBACK, worker.port):
                actions.append(f"{worker.name}: registered with the coordinator")
    return actions


def rebalance(stack: Stack, wait: bool = True) -> list[str]:
    """Citus's background rebalance on the coordinator, followed to its end by default."""
    stack.require_cluster("rebalance")
    workers = len(stack.topology.workers)
    with connect(stack.dsn(), statement_timeout_ms=0) as conn:
        done = citus.rebalance(conn, wait=wait, progress=stack.progress)
    return [f"{done} across {workers} workers" if done.endswith("finished") else done]
