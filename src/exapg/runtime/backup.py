"""Backups of a local stack, and restores: what `exapg backup` and `exapg restore` do.

Every primary node is its own pgBackRest stanza (runtime/archiving.py: the coordinator's is
`coordinator` whichever node of an ha pair is primary). A restore stops the
stack (the orchestrator's `restore`), then, per primary: moves its data directory aside,
restores into an empty one, starts it, waits for recovery to reach the target and promote.
Any failure puts every moved directory back. Then the standby's data directory is removed
(it follows a history that no longer exists) and `up` clones it again.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from exapg import state as state_file
from exapg.backup import points, records
from exapg.backup.pgbackrest import INSTALL_HINT, BackupSet, BackupType, StanzaInfo, Target, VerifyResult, binary
from exapg.cluster.topology import Mode, Node, Topology
from exapg.errors import ExaPGError, InvalidParameterError, MissingDependencyError, OperationTimeoutError, first_line
from exapg.postgres.conn import connect
from exapg.proc import wait_until
from exapg.runtime import archiving, nodes
from exapg.stack import Stack

# Replaying WAL up to the target can take long on a busy database: this is the patience of a
# restore, not of a start.
RECOVERY_TIMEOUT = 6 * 3600.0


def iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


# -- backup ---------------------------------------------------------------------------------------
def take(stack: Stack, kind: BackupType) -> tuple[list[tuple[str, BackupSet]], list[str]]:
    """One backup of every primary node (coordinator first), then the records; returns the
    new backup of each stanza. `incr` and `diff` become `full` when there is none yet.

    In cluster mode the nodes' backups end at different moments; a Citus restore point
    made after the last one (`backup-<coordinator's label>`) is where they all agree."""
    topology = stack.topology
    check_ready(stack)
    backrest = archiving.driver(stack)
    taken = []
    for node in archiving.primaries(topology):
        name = archiving.stanza(node)
        stack.progress(f"{node.name}: {kind} backup")
        backrest.backup(name, kind)
        backups = backrest.info(name).backups
        taken.append((name, backups[-1]))
    actions = archiving.record_backups(stack, topology)
    if topology.mode == Mode.CLUSTER:
        actions += restore_point(stack, f"backup-{taken[0][1].label}")
    return taken, actions


def check_ready(stack: Stack) -> None:
    """Refuse at once what would fail a backup: pgBackRest missing, a primary stopped or not
    archiving yet (one line, what to do)."""
    if binary() is None:
        raise MissingDependencyError(f"pgBackRest is not installed: {INSTALL_HINT}")
    for node in archiving.primaries(stack.topology):
        _require_archiving(stack, node)


def _require_archiving(stack: Stack, node: Node) -> None:
    if stack.server(node).pidfile() is None:
        raise ExaPGError(f"{node.name} is not running: start the stack with 'exapg up' first")
    if archiving.archive_mode(stack, node, stack.secrets) == "off":
        raise ExaPGError(f"WAL archiving is not on yet on {node.name} (archive_mode changes at a restart): "
                         "run 'exapg restart' first")


# -- list -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Restorable:
    """What a stanza can be restored to: from the end of its oldest backup to the newest
    archived WAL (its time: when the archiver last shipped a segment, when the node runs)."""

    earliest_time: float | None
    earliest_lsn: str | None
    latest_time: float | None
    wal_min: str | None
    wal_max: str | None


def listing(stack: Stack) -> list[tuple[StanzaInfo, Restorable]]:
    backrest = archiving.driver(stack)
    found = []
    for node in archiving.primaries(stack.topology):
        info = backrest.info(archiving.stanza(node))
        found.append((info, _restorable(stack, node, info)))
    return found


def _restorable(stack: Stack, node: Node, info: StanzaInfo) -> Restorable:
    valid = [b for b in info.backups if not b.error]
    first = valid[0] if valid else None
    latest = None
    if stack.server(node).pidfile() is not None:
        try:
            with connect(stack.admin_dsn(node), statement_timeout_ms=5000) as conn:
                latest = records.archiving(conn)[1]
        except (ExaPGError, psycopg.Error):
            latest = None
    if first is not None and (latest is None or latest < first.stopped):
        latest = valid[-1].stopped
    return Restorable(first.stopped if first else None, first.lsn_stop if first else None,
                      latest if first else None, info.wal_min, info.wal_max)


def as_json(info: StanzaInfo, restorable: Restorable) -> dict[str, object]:
    return {
        "stanza": info.name,
        "status": info.status,
        "backups": [{
            "label": b.label, "type": b.type, "started": iso(b.started), "stopped": iso(b.stopped),
            "duration_seconds": b.duration, "size_bytes": b.size, "repository_bytes": b.repository_size,
            "delta_bytes": b.delta, "wal_start": b.wal_start, "wal_stop": b.wal_stop,
            "lsn_start": b.lsn_start, "lsn_stop": b.lsn_stop, "prior": b.prior, "error": b.error,
        } for b in info.backups],
        "restorable": {
            "earliest_time": iso(restorable.earliest_time), "earliest_lsn": restorable.earliest_lsn,
            "latest_time": iso(restorable.latest_time), "wal_min": restorable.wal_min,
            "wal_max": restorable.wal_max,
        },
    }


# -- verify ------------------------------------------------------------------------------------------
def verify(stack: Stack) -> list[VerifyResult]:
    backrest = archiving.driver(stack)
    return [backrest.verify(archiving.stanza(node)) for node in archiving.primaries(stack.topology)]


# -- restore points ----------------------------------------------------------------------------------
def restore_point(stack: Stack, name: str) -> list[str]:
    """A named point every primary can be restored to; in cluster mode Citus makes it one
    instant across the nodes. Each primary then switches WAL so the point is archived now."""
    topology = stack.topology
    cluster = topology.mode == Mode.CLUSTER
    with connect(stack.dsn(topology.coordinator)) as conn:
        lsn = records.create_restore_point(conn, name, citus=cluster)
    points.add(restore_points_path(stack), points.RestorePoint(name, time.time(), lsn, cluster),
               stack.user.write_file)
    actions = [f"restore point {name!r} created at coordinator LSN {lsn}"
               + (" (with Citus, on every worker at the same instant)" if cluster else "")]
    for node in archiving.primaries(topology):
        with connect(stack.admin_dsn(node)) as conn:
            records.switch_wal(conn)
    return actions


def restore_points_path(stack: Stack) -> Path:
    return stack.root / "restore-points.json"


def restore_points(stack: Stack) -> list[points.RestorePoint]:
    """The restore points ExaPG made on this stack, oldest first (backup/points.py)."""
    return points.load(restore_points_path(stack))


# -- restore -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Restored:
    node: str
    target: str
    lsn: str
    last_commit: str | None
    timeline: int
    previous: Path | None  # the data directory before the restore, kept (None: there was none)

    def line(self) -> str:
        commit = f", last commit replayed at {self.last_commit}" if self.last_commit else ""
        kept = (f"; the data directory before the restore is kept in {self.previous} (remove it once you "
                "no longer need it)") if self.previous else ""
        return (f"{self.node}: restored to {self.target}: recovery ended at LSN {self.lsn}{commit}; "
                f"now on timeline {self.timeline}{kept}")


def check_restore(stack: Stack, target: Target, backup_set: str | None) -> Topology:
    """Refuse what cannot work before anything stops: a cluster-wide LSN, a missing backup."""
    topology = stack.topology
    if target.kind == "lsn" and topology.mode == Mode.CLUSTER:
        raise InvalidParameterError("--to-lsn names a point of one node's WAL; in cluster mode restore "
                                    "to a restore point (--to-name) or a time")
    backrest = archiving.driver(stack)
    for node in archiving.primaries(topology):
        backups = [b for b in backrest.info(archiving.stanza(node)).backups if not b.error]
        if not backups:
            raise ExaPGError(f"{node.name} has no backup to restore from: take one with 'exapg backup'")
        if backup_set and backup_set not in {b.label for b in backups}:
            raise InvalidParameterError(f"{node.name} has no backup {backup_set!r} (see 'exapg backup list')")
    return topology


def running(stack: Stack) -> bool:
    return any(stack.server(n).pidfile() is not None for n in stack.topology.nodes)


def archive_last_wal(stack: Stack) -> list[str]:
    """Ship the WAL segment in progress on every running primary (`pgbackrest check` switches
    and waits for it), so that what was committed before the restore is in the archive."""
    backrest = archiving.driver(stack)
    actions = []
    for node in archiving.primaries(stack.topology):
        if stack.server(node).pidfile() is None:
            continue
        try:
            backrest.check(archiving.stanza(node))
        except ExaPGError as exc:
            actions.append(f"{node.name}: its last WAL could not be archived ({first_line(exc)}): "
                           "what it committed since the last archived segment cannot be restored")
    return actions


def restore_nodes(stack: Stack, target: Target, backup_set: str | None) -> list[Restored]:
    """On a stopped stack: restore every primary, start it, wait for it to promote. On any
    failure every primary gets its previous data directory back, and the error says so."""
    topology = stack.topology
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moved: list[tuple[Node, Path | None]] = []
    logged = {n.name: _log_size(stack, n) for n in archiving.primaries(topology)}
    with state_file.locked(stack.lock_path):
        try:
            for node in archiving.primaries(topology):
                moved.append((node, _set_aside(node, stamp)))
                _restore_files(stack, node, topology, target, backup_set)
            restored = [_start_restored(stack, node, target, aside) for node, aside in moved]
        except BaseException as exc:
            reason = _server_fatal(stack, [n for n, _ in moved], logged) or first_line(exc)
            _put_back(stack, moved)
            names = ", ".join(n.name for n, aside in moved if aside is not None) or "none had one"
            raise ExaPGError(f"restore failed ({reason}); the previous data directory is back in "
                             f"place ({names}): 'exapg up' starts the stack as it was") from None
        for standby in topology.standbys:
            shutil.rmtree(standby.datadir, ignore_errors=True)  # 'up' clones it again
    return restored


def _set_aside(node: Node, stamp: str) -> Path | None:
    """Move the data directory aside; None when there is none (the disk it was on was lost)."""
    if not node.datadir.exists():
        return None
    aside = node.datadir.with_name(f".pre-restore-{node.name}-{stamp}")
    os.replace(node.datadir, aside)
    return aside


def _restore_files(stack: Stack, node: Node, topology: Topology, target: Target, backup_set: str | None) -> None:
    stack.progress(f"{node.name}: restoring from the backup repository")
    stack.user.make_dir(node.datadir, 0o700)
    archiving.driver(stack).restore(archiving.stanza(node), node.datadir, target, backup_set)
    nodes.write_conf(stack, node, topology, restoring=True)  # `up` writes its own settings again


def _start_restored(stack: Stack, node: Node, target: Target, previous: Path | None) -> Restored:
    """Start the restored node and wait until recovery reached the target and promoted."""
    server = stack.server(node)
    stack.progress(f"{node.name}: replaying WAL to {target.describe()}")
    nodes.reserve_huge_pages(stack, node, server)
    server.start(RECOVERY_TIMEOUT)
    server.wait_ready(stack.settings.start_timeout)

    def promoted() -> bool:
        if server.pidfile() is None:
            raise ExaPGError(f"{node.name} stopped during recovery: see {stack.log_file(node.name)}")
        try:
            with connect(stack.admin_dsn(node), statement_timeout_ms=5000) as conn:
                return records.recovery_done(conn)
        except ExaPGError:
            return False

    if not wait_until(promoted, RECOVERY_TIMEOUT, interval=0.5):
        raise OperationTimeoutError(f"{node.name} did not finish recovery: see {stack.log_file(node.name)}")
    with connect(stack.admin_dsn(node)) as conn:
        lsn, commit, timeline = records.where_recovery_ended(conn)
        records.forget_recovery_settings(conn)
    return Restored(node.name, target.describe(), lsn, commit, timeline, previous)


def _log_size(stack: Stack, node: Node) -> int:
    try:
        return stack.log_file(node.name).stat().st_size
    except OSError:
        return 0


def _server_fatal(stack: Stack, restored: list[Node], logged: dict[str, int]) -> str | None:
    """The last FATAL a restored node logged since the restore began (recovery's reason)."""
    for node in reversed(restored):
        try:
            with stack.log_file(node.name).open("rb") as handle:
                handle.seek(logged.get(node.name, 0))
                lines = handle.read().decode("utf-8", errors="replace").splitlines()
        except OSError:
            continue
        fatal = [line.split("FATAL:", 1)[1].strip() for line in lines if "FATAL:" in line]
        if fatal:
            return f"{node.name}: {fatal[-1]}"
    return None


def _put_back(stack: Stack, moved: list[tuple[Node, Path | None]]) -> None:
    for node, aside in reversed(moved):
        nodes.stop(stack, node)
        if node.datadir.exists():
            shutil.rmtree(node.datadir)
        if aside is not None:
            os.replace(aside, node.datadir)
