"""Switchover, failover and rejoin: which node of an ha stack's pair is the primary.

The role of each node is recorded state (`StackState.primary`) and only these commands
change it; nothing here watches the nodes or acts on its own (automatic failover, when it
comes, is Patroni's job with a DCS, which then owns that record). After the state is
swapped, the normal `up` path makes every part follow the new primary through the
topology: the nodes' configuration, the replication slot, pgBouncer's target, the
exporters' environment.

- switchover: planned. pgBouncer is paused, the primary stopped cleanly (its standby
  receives everything up to the shutdown checkpoint), the standby promoted once it has
  replayed that checkpoint: no committed transaction is lost. The old primary follows.
- failover: the primary is gone. The standby is promoted with what it has received; the
  old primary is rewound (pg_rewind) onto it, or cloned again, and follows it.
- rejoin: a node the state calls standby that does not follow the primary (promoted by
  hand, or a failed rejoin) is rewound onto the primary, or cloned again.

After either promotion the new primary archives WAL into the coordinator's stanza at once (a
reload gives it the archive_command, runtime/archiving.py) and the demoted node loses its
command: one writer into the stanza, no restart. A data directory that cannot be rewound is
moved aside, never deleted.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from exapg import state as state_file
from exapg.cluster.probe import NodeReport, direct_connector, inspect_cluster
from exapg.cluster.roles import record_role_change
from exapg.cluster.topology import PAIR, Mode, Node, Topology, slot_name
from exapg.credentials import Secrets
from exapg.errors import CommandError, ExaPGError, InvalidParameterError, OperationTimeoutError, first_line
from exapg.postgres import pgbouncer as pgbouncer_conf
from exapg.postgres import replication
from exapg.postgres.conn import connect
from exapg.proc import wait_until
from exapg.runtime import archiving, nodes, processes, supervised
from exapg.runtime.programs import management_api, pgbouncer
from exapg.stack import LOOPBACK, Stack
from exapg.state import StackState

BringUp = Callable[[], list[str]]
HISTORY_FILE = "role-changes.json"
HISTORY_KEEP = 50
LEFTOVER_GRACE = 10.0  # seconds a dead postmaster's children get to notice and exit


@dataclass(frozen=True)
class RoleChange:
    """One change of the primary, as kept in role-changes.json and exapg.role_changes."""

    at: str
    kind: str  # "switchover" or "failover"
    from_server: str
    to_server: str
    timeline: int | None


# -- pure decisions ----------------------------------------------------------------------------
def other_node(name: str) -> str:
    return PAIR[1] if name == PAIR[0] else PAIR[0]


def swapped(state: StackState) -> StackState:
    """The state with the other node of the pair as primary."""
    return replace(state, primary=other_node(state.primary))


def with_change(entries: list[dict[str, Any]], change: RoleChange, keep: int = HISTORY_KEEP) -> list[dict[str, Any]]:
    """The history with `change` appended, the last `keep` entries only."""
    return [*entries, asdict(change)][-keep:]


def switchover_blockers(primary: str, primary_running: bool, standby: str, report: NodeReport | None) -> list[str]:
    """Why a switchover cannot start now (empty: it can): both nodes run, the standby
    streams from the primary and keeps up (the health rule of `exapg status`)."""
    if not primary_running:
        return [f"{primary} (the primary) is not running: start it with 'exapg up', or use 'exapg failover'"]
    if report is None or report.state == "down":
        why = f" ({report.error})" if report and report.error else ""
        return [f"{standby} (the standby) does not answer{why}: 'exapg up' starts it"]
    if not report.healthy:
        return [f"{standby} is not a healthy standby of {primary}: {report.error}"]
    return []


def require_pair(stack: Stack, command: str) -> tuple[StackState, Topology]:
    """The state and topology of an ha stack, else one line (exit 2)."""
    state = stack.require_state()
    topology = stack.topology_of(state)
    if state.mode != Mode.HA or not topology.standbys:
        raise InvalidParameterError(
            f"'exapg {command}' needs an ha-mode stack (a primary and its hot standby); stack "
            f"'{stack.name}' runs in {state.mode} mode{'' if topology.standbys else ' without a standby'}")
    return state, topology


# -- the commands ----------------------------------------------------------------------------
def switchover(stack: Stack, bring_up: BringUp) -> list[str]:
    """Planned change: the standby becomes primary without losing a committed transaction,
    the old primary follows it. Preconditions fail with nothing changed."""
    state, topology = require_pair(stack, "switchover")
    old, new = topology.coordinator, topology.standbys[0]
    secrets = stack.secrets
    with state_file.locked(stack.lock_path):
        problems = switchover_blockers(old.name, stack.server(old).pidfile() is not None, new.name,
                                       _report(stack, topology, new, secrets))
        if problems:
            raise ExaPGError(f"switchover refused, nothing changed: {problems[0]}")
        with paused_pooler(stack, secrets) as follow:
            _stop_cleanly(stack, old, new, secrets)
            try:
                timeline = _promote(stack, new, secrets)
            except ExaPGError as exc:
                raise ExaPGError(f"{new.name} could not be promoted ({exc}); {old.name} is stopped and still "
                                 "the primary: 'exapg up' starts it again") from None
            topology = _save_swapped(stack, state)
            follows = follow(topology)
        follows += _archiving_follows(stack, topology, old, secrets) + _api_follows(stack, topology)
        actions = [f"{old.name}: stopped cleanly",
                   f"{new.name}: promoted after replaying all of {old.name}'s WAL, primary on timeline {timeline}",
                   *_record(stack, "switchover", old.name, new.name, timeline, secrets), *follows]
        try:
            actions += _prepare_follower(stack, topology.node(old.name), topology)
        except ExaPGError as exc:
            raise _not_rejoined("switchover", new.name, old.name, exc) from None
    try:
        actions += _follow_up(stack, topology.node(old.name), topology, bring_up)
    except ExaPGError as exc:
        raise _not_rejoined("switchover", new.name, old.name, exc) from None
    return actions


def failover(stack: Stack, bring_up: BringUp, force: bool = False) -> list[str]:
    """The primary is gone: promote the standby with what it received, then make the old
    primary follow it (rewound, or cloned again)."""
    state, topology = require_pair(stack, "failover")
    old, new = topology.coordinator, topology.standbys[0]
    secrets = stack.secrets
    with state_file.locked(stack.lock_path):
        if _answers(stack, old, secrets) and not force:
            raise ExaPGError(
                f"{old.name} (the primary) still answers: use 'exapg switchover' for a planned change "
                "(no transaction lost), or 'exapg failover --force' to stop it and fail over anyway")
        if not _in_recovery(stack, new, secrets):
            raise ExaPGError(f"{new.name} is not a running standby: nothing to fail over to ('exapg status')")
        actions = _fence(stack, old) + _salvage(stack, old, new, secrets)
        timeline = _promote(stack, new, secrets)
        topology = _save_swapped(stack, state)
        actions += [f"{new.name}: promoted, primary on timeline {timeline}",
                    *_record(stack, "failover", old.name, new.name, timeline, secrets),
                    *_repoint_pooler(stack, topology, secrets), *_archiving_follows(stack, topology, old, secrets),
                    *_api_follows(stack, topology)]
        try:
            actions += _prepare_follower(stack, topology.node(old.name), topology)
        except ExaPGError as exc:
            raise _not_rejoined("failover", new.name, old.name, exc) from None
    try:
        return actions + _follow_up(stack, topology.node(old.name), topology, bring_up)
    except ExaPGError as exc:
        raise _not_rejoined("failover", new.name, old.name, exc) from None


def rejoin(stack: Stack, bring_up: BringUp, name: str | None = None, rebuild: bool = False) -> list[str]:
    """Make the standby follow the state's primary again (rewound, or cloned again; with
    `rebuild` cloned again at once); the primary is never touched. Empty when it already
    streams from it (and no rebuild is asked)."""
    _, topology = require_pair(stack, "rejoin")
    primary = topology.coordinator
    node = topology.standbys[0] if name is None else topology.node(name)
    if node.name == primary.name:
        raise InvalidParameterError(
            f"{node.name} is the primary (pgBouncer serves it): rejoin acts on the standby, "
            f"{topology.standbys[0].name}")
    secrets = stack.secrets
    with state_file.locked(stack.lock_path):
        if not rebuild and nodes.receiver_status(stack, node, secrets) == "streaming":
            return []
        if not _answers(stack, primary, secrets):
            raise ExaPGError(f"{primary.name} (the primary) does not answer: start it with 'exapg up', "
                             "or promote the standby with 'exapg failover'")
        actions = _fence(stack, node) + _prepare_follower(stack, node, topology, rebuild)
    return actions + _follow_up(stack, node, topology, bring_up)


def history(stack: Stack) -> list[dict[str, Any]]:
    """The recorded role changes, oldest first (role-changes.json in the state directory)."""
    try:
        entries = json.loads((stack.root / HISTORY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return entries if isinstance(entries, list) else []


# -- steps ---------------------------------------------------------------------------------------
def _report(stack: Stack, topology: Topology, standby: Node, secrets: Secrets) -> NodeReport | None:
    connector = direct_connector(lambda name: stack.dsn(topology.node(name), secrets=secrets))
    reports = inspect_cluster(topology, connector, nodes=[topology.coordinator, standby])
    return next((r for r in reports if r.name == standby.name), None)


def _answers(stack: Stack, node: Node, secrets: Secrets) -> bool:
    try:
        with connect(stack.admin_dsn(node, secrets), statement_timeout_ms=5000) as conn:
            conn.execute("SELECT 1")
        return True
    except (ExaPGError, psycopg.Error):
        return False


def _in_recovery(stack: Stack, node: Node, secrets: Secrets) -> bool:
    try:
        with connect(stack.admin_dsn(node, secrets), statement_timeout_ms=5000) as conn:
            return replication.in_recovery(conn)
    except (ExaPGError, psycopg.Error):
        return False


def _stop_cleanly(stack: Stack, old: Node, new: Node, secrets: Secrets) -> None:
    """Stop the primary (fast: its walsender sends everything up to the shutdown checkpoint)
    and wait until the standby has replayed that checkpoint. On any failure the old primary
    is started again and nothing has changed."""
    stack.progress(f"{old.name}: stopping cleanly")
    nodes.stop(stack, old)
    server = stack.server(old)
    try:
        control = server.controldata()
        if control.get("Database cluster state") != "shut down":
            raise ExaPGError(f"{old.name} did not shut down cleanly ({control.get('Database cluster state')})")
        last = control["Latest checkpoint location"]
        stack.progress(f"{new.name}: replaying up to {last}")
        timeout = stack.settings.start_timeout
        if not wait_until(lambda: _replayed_past(stack, new, secrets, last), timeout, interval=0.05):
            raise OperationTimeoutError(
                f"{new.name} had not replayed {old.name}'s last checkpoint ({last}) after {timeout:.0f}s")
    except (ExaPGError, KeyError) as exc:
        server.start(stack.settings.start_timeout)
        kind = OperationTimeoutError if isinstance(exc, OperationTimeoutError) else ExaPGError
        raise kind(f"switchover abandoned, {old.name} is primary again, nothing changed: {exc}") from None


def _replayed_past(stack: Stack, node: Node, secrets: Secrets, lsn: str) -> bool:
    try:
        with connect(stack.admin_dsn(node, secrets), statement_timeout_ms=5000) as conn:
            return replication.replayed_past(conn, lsn)
    except (ExaPGError, psycopg.Error):
        return False


def _salvage(stack: Stack, old: Node, new: Node, secrets: Secrets) -> list[str]:
    """The dead primary's data directory is on this machine: finish its crash recovery
    offline (no client can connect), then let the standby replay the rest of its WAL from
    its pg_wal (restore_command) before it is promoted, so that no transaction the old
    primary committed is lost. Where that cannot be done, says what may be lost."""
    server = stack.server(old)
    if not server.initialized:
        return [f"{old.name}: no data directory, transactions {new.name} had not received are lost"]
    timeout = stack.settings.start_timeout
    try:
        if server.controldata().get("Database cluster state") != "shut down":
            stack.progress(f"{old.name}: finishing its crash recovery offline")
            server.recover(timeout=max(600.0, timeout))
        last = server.controldata()["Latest checkpoint location"]
    except (ExaPGError, KeyError) as exc:
        return [f"{old.name}: its WAL cannot be read ({first_line(exc)}): transactions it committed "
                f"that {new.name} had not received are lost"]
    if _replayed_past(stack, new, secrets, last):
        return []
    stack.progress(f"{new.name}: replaying {old.name}'s WAL up to {last}")
    source = shlex.quote(str(old.datadir / "pg_wal"))
    with connect(stack.admin_dsn(new, secrets)) as conn:
        replication.set_restore_command(conn, f'cp {source}/%f "%p"')
        try:
            complete = wait_until(lambda: _replayed_past(stack, new, secrets, last), timeout, interval=0.1)
        finally:
            replication.set_restore_command(conn, None)
    if not complete:
        return [f"{new.name}: could not replay {old.name}'s WAL up to {last} within {timeout:.0f}s: "
                "transactions committed after what it had received are lost"]
    return [f"{new.name}: replayed all of {old.name}'s WAL (up to {last}) from its data directory"]


def _promote(stack: Stack, node: Node, secrets: Secrets) -> int | None:
    """pg_ctl promote (waits until out of recovery), then a checkpoint so the control file
    names the new timeline (pg_rewind reads it from there); returns the timeline."""
    stack.progress(f"{node.name}: promoting")
    stack.server(node).promote(timeout=stack.settings.start_timeout)
    with connect(stack.admin_dsn(node, secrets), statement_timeout_ms=0) as conn:
        replication.checkpoint(conn)
        return replication.timeline(conn)


def _save_swapped(stack: Stack, state: StackState) -> Topology:
    new_state = swapped(state)
    state_file.save(stack.state_path, new_state, stack.user)
    return stack.topology_of(new_state)


def _record(stack: Stack, kind: str, old: str, new: str, timeline: int | None, secrets: Secrets) -> list[str]:
    """In the state directory, and on the new primary for monitoring (exapg.role_changes)."""
    change = RoleChange(datetime.now(UTC).isoformat(timespec="seconds"), kind, old, new, timeline)
    stack.user.write_file(stack.root / HISTORY_FILE,
                          json.dumps(with_change(history(stack), change), indent=2) + "\n", 0o600)
    try:
        with connect(stack.dsn(new, secrets=secrets)) as conn:
            record_role_change(conn, kind=kind, from_server=old, to_server=new, timeline=timeline)
    except (ExaPGError, psycopg.Error) as exc:
        return [f"{new}: could not record the {kind} in exapg.role_changes ({first_line(exc)})"]
    return []


def _fence(stack: Stack, node: Node) -> list[str]:
    """Make sure `node` no longer runs: a clean stop if it can, else an immediate one; then
    wait for the children of a killed postmaster to exit (they still hold its memory)."""
    server = stack.server(node)
    actions = []
    if server.pidfile() is not None:
        try:
            nodes.stop(stack, node)
        except ExaPGError:
            server.stop(timeout=30, mode="immediate")
        actions.append(f"{node.name}: stopped")
    if not nodes.leftovers_gone(node, LEFTOVER_GRACE):
        for pid in processes.in_data_dir(node.datadir):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        nodes.leftovers_gone(node, LEFTOVER_GRACE)
        actions.append(f"{node.name}: stopped the processes its dead postmaster left")
    server.remove_stale_pidfile()
    nodes.release_huge_pages(stack, node)
    return actions


def _prepare_follower(stack: Stack, node: Node, topology: Topology, rebuild: bool = False) -> list[str]:
    """Rewind the stopped `node` onto the primary and write its standby configuration; a data
    directory pg_rewind cannot bring back (or any, with `rebuild`) is moved aside, and `up`
    clones the primary again."""
    primary = topology.coordinator
    server = stack.server(node)
    if not server.initialized:
        return []
    if rebuild:
        aside = nodes.set_aside(node)
        return [f"{node.name}: data directory kept in {aside}, cloned from {primary.name} again"]
    source = make_conninfo(host=LOOPBACK, port=primary.port, user=stack.settings.postgres_user,
                           dbname="postgres", connect_timeout=5)
    stack.progress(f"{node.name}: pg_rewind onto {primary.name}")
    try:
        rewound = server.rewind(source, passfile=stack.passfile, timeout=max(600.0, stack.settings.start_timeout))
    except (CommandError, OperationTimeoutError) as exc:
        aside = nodes.set_aside(node)
        return [f"{node.name}: could not be rewound ({exc}); its data directory is kept in {aside} "
                f"and it is cloned from {primary.name} again"]
    nodes.write_conf(stack, node, topology)  # pg_rewind copied the primary's own files
    return [f"{node.name}: rewound onto {primary.name}" if rewound
            else f"{node.name}: its WAL had not diverged from {primary.name} (no rewind needed)"]


def _follow_up(stack: Stack, node: Node, topology: Topology, bring_up: BringUp) -> list[str]:
    """The normal `up` path (the node starts as a standby, or is cloned; pgBouncer and the
    exporters follow), then the slot the node kept from its days as primary is dropped."""
    actions = bring_up()
    stale = slot_name(topology.coordinator.name)
    with suppress(ExaPGError, psycopg.Error), connect(stack.admin_dsn(node)) as conn:
        if replication.drop_slot_if_present(conn, stale):
            actions.append(f"{node.name}: dropped its old slot {stale}")
    actions.append(f"{node.name}: streams from {topology.coordinator.name}")
    return actions


def _archiving_follows(stack: Stack, topology: Topology, old: Node, secrets: Secrets) -> list[str]:
    """The promoted node archives into the coordinator's stanza from now on, with no restart:
    what the stopped old primary had not archived is pushed from its data directory; the new
    primary's exapg.conf gets the archive_command and pgbackrest.conf the stanza's new data
    directory and port, reloaded; then the WAL it kept since its promotion (the timeline's
    history file first) is shipped and checked. The old primary gets a standby's configuration,
    without the command, at once: started by hand before it rejoins, it archives nothing (it
    gets it again after pg_rewind, which copies the primary's files)."""
    primary, demoted = topology.coordinator, topology.node(old.name)
    stack.progress(f"{primary.name}: WAL archiving into stanza {archiving.stanza(primary)}")
    actions = archiving.push_leftovers(stack, old)
    try:
        if stack.server(demoted).initialized:
            nodes.write_conf(stack, demoted, topology)
        nodes.write_conf(stack, primary, topology)
        reloaded = nodes.apply_conf(stack, primary, stack.server(primary), secrets)
    except (ExaPGError, OSError) as exc:
        return [*actions, f"{primary.name}: WAL archiving not configured ({first_line(exc)}): 'exapg up' configures it"]
    return [*actions, reloaded, *archiving.check_promoted(stack, primary, secrets)]


def _api_follows(stack: Stack, topology: Topology) -> list[str]:
    """The management API opens its primary's pools when it starts: restarted, it writes
    (logins, audit) on the new primary."""
    try:
        return supervised.restart(stack, topology, management_api.NAME)
    except ExaPGError as exc:
        return [f"{management_api.NAME}: not restarted ({exc}): 'exapg restart' restarts it"]


def _not_rejoined(kind: str, new: str, old: str, exc: ExaPGError) -> ExaPGError:
    return ExaPGError(f"{kind} done, {new} is the primary; {old} did not rejoin as its standby "
                      f"({exc}): repair it, then run 'exapg rejoin {old}'")


# -- pgBouncer -----------------------------------------------------------------------------------
@contextmanager
def paused_pooler(stack: Stack, secrets: Secrets) -> Iterator[Callable[[Topology], list[str]]]:
    """pgBouncer holds its clients' queries (PAUSE) while the primary changes, instead of
    failing them; the block calls the yielded function to point it at the new primary, and
    pgBouncer resumes when the block ends, whatever happened. A pgBouncer that does not
    answer is left alone."""
    admin = _pooler_admin(stack, secrets)
    if admin is not None:
        stack.progress("pgBouncer: pausing clients")
        pgbouncer_conf.admin(admin, "PAUSE")
    try:
        yield lambda topology: _repoint_pooler(stack, topology, secrets, admin)
    finally:
        if admin is not None:
            with suppress(psycopg.Error), admin:
                pgbouncer_conf.admin(admin, "RESUME")


def _repoint_pooler(stack: Stack, topology: Topology, secrets: Secrets,
                    admin: psycopg.Connection | None = None) -> list[str]:
    """pgBouncer's [databases] rewritten for the new primary, reloaded, its server
    connections to the old one closed."""
    pgbouncer.write_files(stack, topology.coordinator, secrets)
    own = admin is None
    admin = admin or _pooler_admin(stack, secrets)
    if admin is None:
        return []
    try:
        pgbouncer_conf.admin(admin, "RELOAD")
        pgbouncer_conf.admin(admin, "RECONNECT")
    finally:
        if own:
            admin.close()
    return [f"pgBouncer: serves {topology.coordinator.name}"]


def _pooler_admin(stack: Stack, secrets: Secrets) -> psycopg.Connection | None:
    try:
        return connect(stack.dsn(pooled=True, dbname="pgbouncer", secrets=secrets), statement_timeout_ms=0)
    except ExaPGError:
        return None
