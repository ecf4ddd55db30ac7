"""What runs in a local stack and how healthy it is: one ServiceStatus per node and program.

Nodes are judged by their pidfile and pg_isready, standbys also by the verdict the API
uses (cluster/health.py), workers by Citus's own view (pg_dist_node); programs by the
supervisor, checked against the processes themselves.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from exapg.cluster.health import lag_text
from exapg.cluster.split_brain import explain, split_brain
from exapg.cluster.topology import Node, Topology
from exapg.errors import ExaPGError
from exapg.postgres.ctl import PgIsReady
from exapg.runtime import processes
from exapg.runtime import programs as supervised_programs
from exapg.runtime.base import Program
from exapg.runtime.supervised import SUPERVISOR_STATES, healthy, supervisor
from exapg.runtime.supervisor import ProcessInfo
from exapg.stack import Stack
from exapg.status import ServiceState, ServiceStatus

if TYPE_CHECKING:
    from exapg.cluster.probe import NodeReport


def statuses(stack: Stack) -> list[ServiceStatus]:
    topology = stack.topology
    reports = standby_reports(stack, topology)
    timelines = {name: r.timeline for name, r in reports.items() if r.timeline is not None}
    result = [node_status(stack, node, reports.get(node.name), timelines.get(node.name)) for node in topology.nodes]
    result = with_split_brain(result, topology, reports)
    if topology.workers:
        result = with_citus_membership(stack, result, topology)
    infos = supervisor(stack).processes()
    programs = supervised_programs.for_topology(stack, topology)
    unsupervised = _unsupervised(stack, programs, infos)
    for program in programs:
        result.append(program_status(stack, program, infos.get(program.name), unsupervised))
    return result


def standby_reports(stack: Stack, topology: Topology) -> dict[str, NodeReport]:
    """Standbys and their primaries inspected as the API does: one verdict (cluster/health.py)."""
    if not topology.standbys:
        return {}
    # psycopg comes with the probe: a stack without standby or workers is checked without it.
    from exapg.cluster.probe import direct_connector, inspect_cluster

    primaries = {n.primary for n in topology.standbys}
    nodes = [n for n in topology.nodes if n.is_standby or n.name in primaries]
    try:
        secrets = stack.secrets
    except ExaPGError:
        return {}  # an up that stopped before storing them: nothing runs to inspect
    connector = direct_connector(lambda name: stack.dsn(topology.node(name), secrets=secrets))
    return {r.name: r for r in inspect_cluster(topology, connector, nodes=nodes)}


def with_split_brain(
    found: list[ServiceStatus], topology: Topology, reports: dict[str, NodeReport],
) -> list[ServiceStatus]:
    """When a node configured as standby accepts writes: it and the primary both unhealthy,
    each saying so with its timeline (the same rule as the API's, cluster/split_brain.py)."""
    details = explain(topology.coordinator.name, split_brain(topology, list(reports.values())))
    return [replace(s, healthy=False, detail=details[s.name]) if s.name in details else s for s in found]


def _unsupervised(stack: Stack, programs: list[Program], infos: dict[str, ProcessInfo]) -> dict[int, int]:
    """Port -> pid of this stack's programs that run although the supervisor does not say
    so (it died, or lost them): found by their mark and their listening socket."""
    alive = (ServiceState.RUNNING, ServiceState.STARTING)
    if all(p.name in infos and SUPERVISOR_STATES.get(infos[p.name].state) in alive for p in programs):
        return {}
    return processes.listening_ports(processes.marked(stack.marker))


def with_citus_membership(stack: Stack, found: list[ServiceStatus], topology: Topology) -> list[ServiceStatus]:
    """Workers as Citus sees them (pg_dist_node): a running but inactive worker is unhealthy."""
    import psycopg

    from exapg.cluster import citus
    from exapg.postgres.conn import connect

    try:
        with connect(stack.dsn(), statement_timeout_ms=5000) as conn:
            members = {w.port: w for w in citus.workers(conn)}
    except (ExaPGError, psycopg.Error):
        return found
    ports = {w.port for w in topology.workers}
    result = []
    for status in found:
        member = members.get(status.port) if status.port in ports else None
        if status.port in ports and status.healthy:
            if member is None:
                status = replace(status, healthy=False, detail="not registered with the coordinator")
            else:
                size = f"{member.bytes / 1024**2:.1f} MB"
                detail = f"{'active' if member.active else 'INACTIVE'}, {member.shards} shards, {size}"
                status = replace(status, healthy=member.active, detail=detail)
        result.append(status)
    return result


def node_status(
    stack: Stack, node: Node, report: NodeReport | None = None, timeline: int | None = None,
) -> ServiceStatus:
    server = stack.server(node)
    pid = server.pidfile()
    if pid is None:
        detail = "not initialized" if not server.initialized else "not running"
        return ServiceStatus(node.name, node.role, node.port, None, ServiceState.STOPPED, False, detail)
    ready = server.isready(timeout=2)
    state = ServiceState.RUNNING if pid.status in ("ready", "standby") else ServiceState.STARTING
    detail = f"hot standby of {node.primary}" if node.is_standby else "primary"
    if timeline is not None:
        detail += f", timeline {timeline}"
    is_healthy = ready == PgIsReady.ACCEPTING
    if not is_healthy:
        detail = f"pg_isready: {ready.name.lower().replace('_', ' ')}"
    elif node.is_standby and report is not None:
        is_healthy = report.healthy
        lag = lag_text(report.upstream.lag_bytes, report.upstream.lag_seconds) if report.upstream else ""
        detail = report.error or ", ".join(p for p in (detail, lag) if p)
    return ServiceStatus(node.name, node.role, node.port, pid.pid, state, is_healthy, detail)


def program_status(
    stack: Stack, program: Program, info: ProcessInfo | None, unsupervised: dict[int, int] | None = None,
) -> ServiceStatus:
    """The supervisor's view, checked against the processes: a program it does not run
    but whose marked process holds the program's port is running, and says so."""
    state = SUPERVISOR_STATES.get(info.state, ServiceState.UNKNOWN) if info else ServiceState.STOPPED
    pid = info.pid if info else None
    detail = program.detail or (f"http://127.0.0.1:{program.port}/" if program.health_url else "supervised")
    if state not in (ServiceState.RUNNING, ServiceState.STARTING):
        orphan = (unsupervised or {}).get(program.port) if program.port else None
        if orphan is None:
            return ServiceStatus(program.name, program.role, program.port, pid, state, False,
                                 "not running" if info is None else f"supervisor: {info.state.lower()}")
        state, pid = ServiceState.RUNNING, orphan
        detail = "running without its supervisor: 'exapg up' takes it back"
    return ServiceStatus(program.name, program.role, program.port, pid, state, healthy(stack, program), detail)
