"""WAL archiving from `up`: pgBackRest's configuration, the archive settings of each node, and
one stanza per primary node, created once and checked (`pgbackrest check`).

A node's archive settings are in its exapg.conf (nodes.write_conf). archive_mode only
changes at a restart: on a stack made before archiving was on, `up` says so and
`exapg restart` turns it on; until then `exapg backup` refuses with that advice.
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


def write_config(stack: Stack, topology: Topology) -> bool:
    """Render pgbackrest.conf and make the directories it names; True when it changed."""
    where = paths(stack)
    stack.user.make_dir(where.log_dir, 0o750)
    stack.user.make_dir(where.lock_dir, 0o700)
    if stack.settings.backup_repo_type == "posix":
        stack.user.make_dir(Path(stack.settings.backup_repo_path), 0o700)
    nodes = [StanzaNode(n.name, n.datadir, n.port) for n in primaries(topology)]
    return stack.write_if_changed(where.config, render_config(stack.settings, nodes, where))


def node_settings(stack: Stack, node: Node) -> dict[str, str]:
    """exapg.conf's archive settings of one node. A standby archives nothing, even once
    promoted by hand: a second writer into its primary's stanza would put a timeline there
    that a restore to 'latest' follows, away from what the primary committed since."""
    if node.is_standby:
        return {}
    return {
        "archive_mode": "on",
        "archive_command": archive_command(paths(stack).config, node.name, node.datadir),
        "archive_timeout": ARCHIVE_TIMEOUT,
    }


def archive_mode(stack: Stack, node: Node, secrets: Secrets) -> str:
    with connect(stack.admin_dsn(node, secrets), statement_timeout_ms=5000) as conn:
        return records.archiving(conn)[0]


def ensure_stanza(stack: Stack, node: Node, secrets: Secrets) -> list[str]:
    """Create the node's stanza if the repository lacks it, then check that WAL reaches it."""
    backrest = driver(stack)
    if backrest.info(node.name).exists:
        return []
    stack.progress(f"{node.name}: creating the backup stanza")
    backrest.stanza_create(node.name)
    if archive_mode(stack, node, secrets) == "off":
        return [f"{node.name}: backup stanza created in {stack.settings.backup_repo_path}; WAL archiving "
                "starts at the next 'exapg restart' (archive_mode)"]
    backrest.check(node.name)
    return [f"{node.name}: backup stanza created in {stack.settings.backup_repo_path}; WAL archiving checked"]


def record_backups(stack: Stack, topology: Topology, secrets: Secrets | None = None) -> list[str]:
    """Write the repository's backups into exapg_backup.backups on the coordinator (what the
    metrics read). A failure is reported, not raised: the backups themselves are fine."""
    backrest = driver(stack)
    try:
        infos = [backrest.info(n.name) for n in primaries(topology)]
        with connect(stack.dsn(topology.coordinator, secrets=secrets)) as conn:
            records.write(conn, infos)
    except (ExaPGError, psycopg.Error) as exc:
        return [f"backups not recorded for the metrics (exapg_backup.backups): {first_line(exc)}"]
    return []
