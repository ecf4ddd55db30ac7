"""WAL archiving from `up`: pgBackRest's configuration, the archive settings of each node, and
one stanza per primary role, created once and checked (`pgbackrest check`).

A node's archive settings are in its exapg.conf (nodes.write_conf). Every node runs with
archive_mode on, as it only changes at a restart; only the node ExaPG calls primary has an
archive_command, which a reload changes: a switchover or failover gives it to the promoted
node and takes it from the demoted one, with no restart. On a stack made before archiving
was on, `up` says a restart applies archive_mode and `exapg restart` turns it on; until
then `exapg backup` refuses with that advice.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from exapg.backup import records
from exapg.backup.pgbackrest import Paths, PgBackRest, StanzaNode, archive_command, render_config
from exapg.cluster.topology import Node, Topology
from exapg.credentials import Secrets
from exapg.errors import ExaPGError, first_line
from exapg.postgres.conn import connect
from exapg.stack import Stack
from exapg.status import Role

# At most this many seconds of committed work wait in an unfinished WAL segment: it bounds
# what the loss of the node's disk costs. An idle server does not switch segments.
ARCHIVE_TIMEOUT = "60s"


def paths(stack: Stack) -> Paths:
    return Paths(config=stack.conf_dir / "pgbackrest.conf", log_dir=stack.log_dir / "pgbackrest",
                 lock_dir=stack.run_dir / "pgbackrest", socket_dir=stack.run_dir)


def driver(stack: Stack) -> PgBackRest:
    return PgBackRest(paths(stack), stack.user, stack.passfile)


def primaries(topology: Topology) -> list[Node]:
    """The nodes backed up, each as its own stanza: the coordinator and the workers."""
    return [n for n in topology.nodes if not n.is_standby]


def stanza(node: Node) -> str:
    """The stanza a primary node archives into and is backed up as. The coordinator's is
    `coordinator` whichever node of an ha pair holds that role: a promoted standby keeps its
    primary's system identifier, and one stanza keeps one history across switchovers (a
    restore to 'latest' follows the timelines through them). A worker's is its name."""
    return Role.COORDINATOR.value if node.role == Role.COORDINATOR else node.name


def write_config(stack: Stack, topology: Topology) -> bool:
    """Render pgbackrest.conf and make the directories it names; True when it changed."""
    where = paths(stack)
    stack.user.make_dir(where.log_dir, 0o750)
    stack.user.make_dir(where.lock_dir, 0o700)
    if stack.settings.backup_repo_type == "posix":
        stack.user.make_dir(Path(stack.settings.backup_repo_path), 0o700)
    return stack.write_if_changed(where.config, render_config(stack.settings, stanza_nodes(topology), where))


def stanza_nodes(topology: Topology) -> list[StanzaNode]:
    """pgbackrest.conf's stanzas: each names the data directory and port of its primary now."""
    return [StanzaNode(stanza(n), n.datadir, n.port) for n in primaries(topology)]


def node_settings(stack: Stack, node: Node) -> dict[str, str]:
    """exapg.conf's archive settings of one node. archive_mode is on everywhere (a standby
    in recovery archives nothing with it), so that a promoted standby can archive without a
    restart; the archive_command only on the primary. A standby has none, even once promoted
    by hand: a second writer into its primary's stanza would put a timeline there that a
    restore to 'latest' follows, away from what the primary committed since. PostgreSQL
    keeps the WAL of a server with archive_mode on and no archive_command until it has one,
    so a switchover or failover (runtime/roles.py) gives the promoted node its command with
    a reload, and it archives from its promotion on, the timeline's history file first."""
    command = "" if node.is_standby else archive_command(paths(stack).config, stanza(node), node.datadir)
    return {"archive_mode": "on", "archive_command": command, "archive_timeout": ARCHIVE_TIMEOUT}


def archive_mode(stack: Stack, node: Node, secrets: Secrets) -> str:
    with connect(stack.admin_dsn(node, secrets), statement_timeout_ms=5000) as conn:
        return records.archiving(conn)[0]


def ensure_stanza(stack: Stack, node: Node, secrets: Secrets) -> list[str]:
    """Create the node's stanza if the repository lacks it, then check that WAL reaches it."""
    backrest, name = driver(stack), stanza(node)
    if backrest.info(name).exists:
        return []
    stack.progress(f"{node.name}: creating the backup stanza")
    backrest.stanza_create(name)
    if archive_mode(stack, node, secrets) == "off":
        return [f"{node.name}: backup stanza created in {stack.settings.backup_repo_path}; WAL archiving "
                "starts at the next 'exapg restart' (archive_mode)"]
    backrest.check(name)
    return [f"{node.name}: backup stanza created in {stack.settings.backup_repo_path}; WAL archiving checked"]


def check_promoted(stack: Stack, node: Node, secrets: Secrets) -> list[str]:
    """After a switchover or failover, once the promoted node has its archive_command: that
    its WAL reaches the stanza (`pgbackrest check` switches a segment and waits for it; the
    archiver ships the new timeline's history file before it). A failure is reported, not
    raised: the new primary serves, and `exapg backup` will say what is wrong."""
    name = stanza(node)
    try:
        if archive_mode(stack, node, secrets) == "off":
            return [f"{node.name}: WAL archiving starts at the next 'exapg restart' (archive_mode was off on "
                    "this former standby, made before standbys ran with it)"]
        driver(stack).check(name)
    except (ExaPGError, psycopg.Error) as exc:
        return [f"{node.name}: its WAL does not reach stanza {name} ({first_line(exc)}): "
                f"see {paths(stack).log_dir}"]
    return [f"{node.name}: archives WAL into stanza {name} (checked)"]


def push_leftovers(stack: Stack, node: Node) -> list[str]:
    """Archive what a stopped former primary had not shipped (pg_wal/archive_status/*.ready:
    its archiver was killed with it, or the repository was unreachable), before it is rewound.
    The promoted node received those segments but does not archive them (a standby marks what
    it receives as done): without them the archive has a hole before the new timeline's
    branch point, and a restore to 'latest' from an older backup ends there."""
    status = node.datadir / "pg_wal" / "archive_status"
    backrest, name = driver(stack), stanza(node)
    try:
        ready = sorted(p.name.removesuffix(".ready") for p in status.glob("*.ready")) if status.is_dir() else []
        for wal in ready:
            backrest.archive_push(name, node.datadir, node.datadir / "pg_wal" / wal)
            (status / f"{wal}.ready").rename(status / f"{wal}.done")
    except (ExaPGError, OSError) as exc:
        return [f"{node.name}: its WAL could not all be archived ({first_line(exc)}): a restore from an "
                "older backup ends before what is missing; take a full backup ('exapg backup --type full')"]
    return [f"{node.name}: archived the {len(ready)} WAL file(s) its archiver had not shipped"] if ready else []


def record_backups(stack: Stack, topology: Topology, secrets: Secrets | None = None) -> list[str]:
    """Write the repository's backups into exapg_backup.backups on the coordinator (what the
    metrics read). A failure is reported, not raised: the backups themselves are fine."""
    backrest = driver(stack)
    try:
        infos = [backrest.info(stanza(n)) for n in primaries(topology)]
        with connect(stack.dsn(topology.coordinator, secrets=secrets)) as conn:
            records.write(conn, infos)
    except (ExaPGError, psycopg.Error) as exc:
        return [f"backups not recorded for the metrics (exapg_backup.backups): {first_line(exc)}"]
    return []
