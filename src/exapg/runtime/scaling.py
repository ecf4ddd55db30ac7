"""What a local stack should become, and how nodes join and leave it.

The decisions (the desired state, which nodes retire and in which order) are plain
functions of the settings and states, tested without a server; the steps that act
(registering workers with Citus, draining a worker before it stops) take the Stack.
"""

from __future__ import annotations

import psycopg

from exapg.cluster import citus
from exapg.cluster.citus import Holdings
from exapg.cluster.topology import Mode, Node, Topology
from exapg.credentials import Secrets
from exapg.errors import ExaPGError, InvalidParameterError, first_line
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


# -- changes of mode ----------------------------------------------------------------------------
def leaves_cluster(previous: StackState | None, desired: StackState) -> bool:
    return previous is not None and previous.mode == Mode.CLUSTER and desired.mode != Mode.CLUSTER


def mode_change_refusal(name: str, previous: StackState | None, desired: StackState,
                        held: Holdings | None) -> str | None:
    """Why `up` must not make this change of mode, or None when it may.

    Between standalone and ha only the standby comes or goes, and into cluster mode the
    coordinator keeps its tables (local to it) and takes Citus: nothing can be lost. Out of
    cluster mode the workers are stopped and Citus is dropped from the coordinator, which
    is safe only when Citus holds nothing: no Citus table (their rows live on the workers),
    no columnar table, no logical slot (the new mode's wal_level cannot keep one). `held`
    is what the running coordinator holds, None when the stack is stopped and cannot tell."""
    if not leaves_cluster(previous, desired):
        return None
    target = desired.mode
    if held is None:
        return (f"stack '{name}' is stopped, so ExaPG cannot check that Citus keeps no data on its "
                f"workers before leaving cluster mode; nothing was changed: start it as it is "
                f"('exapg up'), then run 'exapg up --mode {target}' again")
    redo = (f"or back up (pg_dump), 'exapg down --volumes', 'exapg up --mode {target}' and "
            "restore; nothing was changed")
    if held.tables:
        return (f"cannot leave cluster mode: Citus manages {_some(held.tables)}, whose rows live "
                f"on the workers: bring them back to the coordinator (SELECT undistribute_table("
                f"'{held.tables[0]}')) and run 'exapg up --mode {target}' again, {redo}")
    if held.columnar:
        return (f"cannot leave cluster mode: {_some(held.columnar)} use Citus's columnar storage: "
                f"convert them (SELECT alter_table_set_access_method('{held.columnar[0]}', 'heap')) "
                f"and run 'exapg up --mode {target}' again, {redo}")
    if held.logical_slots:
        return (f"cannot leave cluster mode: logical replication slot(s) {', '.join(held.logical_slots)} "
                f"need wal_level logical, which {target} mode does not set: drop them "
                f"(SELECT pg_drop_replication_slot('{held.logical_slots[0]}')) and run "
                f"'exapg up --mode {target}' again; nothing was changed")
    return None


def _some(tables: tuple[str, ...], shown: int = 3) -> str:
    more = f" and {len(tables) - shown} more" if len(tables) > shown else ""
    return f"{len(tables)} table(s) ({', '.join(tables[:shown])}{more})"


def check_mode_change(stack: Stack, previous: StackState | None, desired: StackState) -> None:
    """Refuse a change of mode that could lose data, before anything is written or started
    (exit 2); leaving cluster mode looks at the running coordinator."""
    held = None
    if leaves_cluster(previous, desired) and previous is not None:
        coordinator = stack.topology_of(previous).coordinator
        if stack.server(coordinator).pidfile() is not None:
            held = coordinator_holdings(stack, coordinator)
    refusal = mode_change_refusal(stack.name, previous, desired, held)
    if refusal:
        raise InvalidParameterError(refusal)


def coordinator_holdings(stack: Stack, coordinator: Node) -> Holdings:
    try:
        with connect(stack.dsn(coordinator)) as conn:
            return citus.holdings(conn)
    except (ExaPGError, psycopg.Error) as exc:
        raise ExaPGError(
            f"cannot check what Citus keeps before leaving cluster mode ({first_line(exc)}); "
            "nothing was changed: check 'exapg status' and retry"
        ) from None


def leave_cluster(stack: Stack, previous: StackState | None, desired: StackState, secrets: Secrets,
                  old_password: str | None = None) -> list[str]:
    """Drop Citus from the coordinator while it still runs with Citus loaded, before its
    configuration leaves cluster mode (check_mode_change made sure nothing is distributed).
    Idempotent: an interrupted change finds Citus already gone."""
    if not leaves_cluster(previous, desired) or previous is None:
        return []
    coordinator = stack.topology_of(previous).coordinator
    with nodes.superuser_connection(stack.dsn(coordinator, secrets=secrets), old_password) as conn:
        dropped = sql_steps.drop_extensions(conn, ["citus", *citus.OPTIONAL_EXTENSIONS])
    return [f"coordinator: extension {name} dropped (nothing was distributed)" for name in dropped]


def retire(stack: Stack, leaving: list[Node], topology: Topology, secrets: Secrets) -> list[str]:
    """Scale in: drain a worker off Citus first (refusing rather than losing a shard),
    drop a standby's slot; then stop the node and set its data directory aside."""
    actions = []
    # Out of cluster mode Citus is already gone from the coordinator (leave_cluster), with
    # nothing distributed: a worker is only stopped.
    draining = topology.mode == Mode.CLUSTER
    for node in leaving:
        if not node.is_standby and draining:
            stack.progress(f"{node.name}: draining its shards to the other workers")
            with connect(stack.dsn(topology.coordinator, secrets=secrets), statement_timeout_ms=0) as conn:
                citus.remove_worker(conn, LOOPBACK, node.port)
        nodes.stop(stack, node)
        if node.is_standby:
            # Once the standby is stopped its slot is inactive: drop it, or it keeps WAL for ever.
            with connect(stack.dsn(topology.coordinator, secrets=secrets)) as conn:
                sql_steps.drop_slot(conn, node.slot or node.name)
        aside = nodes.set_aside(node)
        verb = "drained, removed and stopped" if draining and not node.is_standby else "stopped"
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
