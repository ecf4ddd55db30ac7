"""How the API reaches the stack it manages: a local stack, or a coordinator URL (Docker).

Both give the same things: the topology, a Dsn per node, the services' status, the secrets
the API needs (token key, first admin password), and the backups (local stacks only: in
Docker mode they answer NotSupportedError).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg.conninfo import conninfo_to_dict

from exapg.api.core.errors import NotSupportedError
from exapg.backup.pgbackrest import BackupSet, BackupType, StanzaInfo
from exapg.backup.points import RestorePoint
from exapg.cluster.topology import Mode, Node, Topology
from exapg.errors import ConfigurationError, ExaPGError
from exapg.postgres.conn import Dsn, connect
from exapg.runtime import backup, service_health
from exapg.runtime.backup import Restorable
from exapg.settings import Settings
from exapg.stack import Stack
from exapg.status import Role, ServiceStatus

Progress = Callable[[str], None]
Taken = tuple[list[tuple[str, BackupSet]], list[str]]  # the new backup of each stanza; notes
DOCKER_BACKUPS = ("backups are taken by the local runtime only: in Docker mode back up with the commands "
                  "of docs/docker.md#backups")


@dataclass(frozen=True)
class BackupListing:
    """What `exapg backup list` shows, and the restore points ExaPG made."""

    repository: str
    repository_type: str
    stanzas: list[tuple[StanzaInfo, Restorable]]
    restore_points: list[RestorePoint]


class StackAccess(Protocol):
    def topology(self) -> Topology: ...

    def dsn(self, node: str) -> Dsn: ...

    def pooler_dsn(self) -> Dsn | None: ...

    def services(self) -> list[ServiceStatus]: ...

    def api_secret_key(self) -> str | None: ...

    def admin_password(self) -> str | None: ...

    def backups(self) -> BackupListing: ...

    def check_backup(self) -> None: ...

    def take_backup(self, kind: BackupType, progress: Progress) -> Taken: ...


class LocalAccess:
    """A stack set up by `exapg up` on this machine: its Stack, and the local runtime's
    health module for the services' status."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stack = Stack(settings)

    def topology(self) -> Topology:
        return self.stack.topology

    def dsn(self, node: str) -> Dsn:
        return self.stack.dsn(node)

    def pooler_dsn(self) -> Dsn | None:
        return self.stack.dsn(pooled=True, dbname="pgbouncer")

    def services(self) -> list[ServiceStatus]:
        return service_health.statuses(self.stack)

    def api_secret_key(self) -> str | None:
        return self.stack.secrets.api_secret_key

    def admin_password(self) -> str | None:
        return self.stack.secrets.admin_password

    # The same functions `exapg backup` and `exapg backup list` run (runtime/backup.py).
    def backups(self) -> BackupListing:
        return BackupListing(self.settings.backup_repo_path, self.settings.backup_repo_type,
                             backup.listing(self.stack), backup.restore_points(self.stack))

    def check_backup(self) -> None:
        backup.check_ready(self.stack)

    def take_backup(self, kind: BackupType, progress: Progress) -> Taken:
        """A backup of every primary, reporting its steps to `progress` (a Stack of its own:
        the shared one reports to nobody)."""
        return backup.take(Stack(self.settings, progress=progress), kind)


DISCOVERY_TTL = 10.0  # seconds a discovered topology is reused
DOCKER_DATADIR = Path("/var/lib/postgresql/data")
WORKERS_SQL = """
SELECT nodename, nodeport FROM pg_dist_node
 WHERE groupid <> 0 AND noderole = 'primary' ORDER BY nodeid
"""
# Physical standbys that stream (not Citus's logical shard-move senders, not base backups).
STANDBYS_SQL = """
SELECT host(r.client_addr) FROM pg_stat_replication r
 WHERE r.client_addr IS NOT NULL AND r.state IN ('startup', 'catchup', 'streaming')
   AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.active_pid = r.pid AND s.slot_type = 'logical')
 ORDER BY r.backend_start
"""


@dataclass
class UrlAccess:
    """Docker mode: the coordinator given as DATABASE_URL; secrets from the environment. The
    other nodes are found from the coordinator itself: Citus workers in pg_dist_node, standbys
    in pg_stat_replication (reached on EXAPG_STANDBY_NODE_PORT, 5432 inside the network), and
    kept while they answer once they stop streaming."""

    settings: Settings
    database_url: str
    _found: tuple[float, Topology, dict[str, tuple[str, int]]] | None = field(default=None, init=False, repr=False)
    _standbys: list[str] = field(default_factory=list, init=False, repr=False)  # hosts, in the order found

    def _parts(self) -> dict[str, str]:
        try:
            return {k: str(v) for k, v in conninfo_to_dict(self.database_url).items()}
        except Exception as exc:
            raise ConfigurationError(f"DATABASE_URL is not a valid PostgreSQL URL: {exc}") from None

    def _coordinator(self) -> Dsn:
        p = self._parts()
        password = p.get("password") or (
            self.settings.postgres_password.get_secret_value()
            if self.settings.postgres_password
            else ""
        )
        return Dsn(
            p.get("host", "localhost"),
            int(p.get("port", 5432)),
            p.get("dbname", self.settings.postgres_db),
            p.get("user", self.settings.postgres_user),
            password,
        )

    def _discover(self) -> tuple[Topology, dict[str, tuple[str, int]]]:
        if self._found and time.monotonic() - self._found[0] < DISCOVERY_TTL:
            return self._found[1], self._found[2]
        base = self._coordinator()
        nodes = [Node("coordinator", Role.COORDINATOR, base.port, DOCKER_DATADIR)]
        addresses = {"coordinator": (base.host, base.port)}
        workers, streaming = self._members(base)
        standbys = self._known_standbys(base, streaming)
        for i, (host, port) in enumerate(workers, start=1):
            nodes.append(Node(f"worker{i}", Role.WORKER, port, DOCKER_DATADIR))
            addresses[f"worker{i}"] = (host, port)
        port = self.settings.standby_node_port
        for i, host in enumerate(standbys, start=1):
            name = "standby" if len(standbys) == 1 else f"standby{i}"
            nodes.append(Node(name, Role.STANDBY, port, DOCKER_DATADIR, primary="coordinator"))
            addresses[name] = (host, port)
        mode = Mode.CLUSTER if workers else Mode.HA if standbys else Mode.STANDALONE
        topology = Topology(mode, tuple(nodes))
        self._found = (time.monotonic(), topology, addresses)
        return topology, addresses

    def _known_standbys(self, base: Dsn, streaming: list[str]) -> list[str]:
        """The standbys streaming now, and those seen streaming before that still answer: a
        standby promoted by hand stops streaming, and is then a split brain to show, not a
        node to forget. One that no longer answers is forgotten (removed, or down)."""
        port = self.settings.standby_node_port
        kept = [h for h in self._standbys if h in streaming or self._answers(base, h, port)]
        self._standbys = kept + [h for h in streaming if h not in kept]
        return list(self._standbys)

    @staticmethod
    def _answers(base: Dsn, host: str, port: int) -> bool:
        try:
            with connect(Dsn(host, port, base.dbname, base.user, base.password), statement_timeout_ms=5000):
                return True
        except ExaPGError:
            return False

    @staticmethod
    def _members(base: Dsn) -> tuple[list[tuple[str, int]], list[str]]:
        """Workers and standbys as the coordinator knows them; none while it is down."""
        try:
            with connect(base, statement_timeout_ms=5000) as conn:
                citus = conn.execute("SELECT to_regclass('pg_catalog.pg_dist_node')").fetchone()
                workers = conn.execute(WORKERS_SQL).fetchall() if citus and citus[0] else []
                standbys = [row[0] for row in conn.execute(STANDBYS_SQL).fetchall()]
        except (ExaPGError, psycopg.Error):
            return [], []
        return [(str(h), int(p)) for h, p in workers], standbys

    def topology(self) -> Topology:
        return self._discover()[0]

    def dsn(self, node: str) -> Dsn:
        base = self._coordinator()
        if node == "coordinator":
            return base
        addresses = self._discover()[1]
        if node not in addresses:
            names = ", ".join(addresses)
            raise ExaPGError(f"no node named {node!r} (the coordinator knows of: {names})")
        host, port = addresses[node]
        return Dsn(host, port, base.dbname, base.user, base.password)

    def pooler_dsn(self) -> Dsn | None:
        return None

    def services(self) -> list[ServiceStatus]:
        return []

    def api_secret_key(self) -> str | None:
        key = self.settings.api_secret_key
        return key.get_secret_value() if key else None

    def admin_password(self) -> str | None:
        value = self.settings.admin_password
        return value.get_secret_value() if value else None

    def backups(self) -> BackupListing:
        raise NotSupportedError(DOCKER_BACKUPS)

    def check_backup(self) -> None:
        raise NotSupportedError(DOCKER_BACKUPS)

    def take_backup(self, kind: BackupType, progress: Progress) -> Taken:
        raise NotSupportedError(DOCKER_BACKUPS)


def stack_access(settings: Settings, database_url: str | None) -> StackAccess:
    return UrlAccess(settings, database_url) if database_url else LocalAccess(settings)
