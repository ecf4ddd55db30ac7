"""A local stack: everything ExaPG knows about one stack on this machine, and nothing it does.

The local runtime's helpers (preflight, node life cycle, scaling, supervised programs,
status) each take a Stack; so does the management API, to learn the topology and reach
the nodes. Its layout on disk, under the state directory:

    state.json  secrets.json  pgpass  .lock  hugepages.json  restore-points.json
    data/<node>/          PostgreSQL data directories (removed only by `down --volumes`)
    conf/                 generated configuration (supervisord, pgBouncer, Prometheus)
    run/                  sockets and pidfiles
    logs/                 one log per service

What can be missing (the service user, the PostgreSQL binaries, the secrets) is resolved
on first use, so a missing dependency only fails the commands that need it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from exapg import credentials
from exapg import state as state_file
from exapg.cluster.topology import Mode, Node, Topology
from exapg.credentials import Secrets
from exapg.errors import ExaPGError, InvalidParameterError
from exapg.postgres.binaries import PgBinaries, find_binaries
from exapg.postgres.conn import Dsn
from exapg.postgres.ctl import PostgresServer
from exapg.proc import ServiceUser
from exapg.settings import Settings
from exapg.state import StackState

Progress = Callable[[str], None]
LOOPBACK = "127.0.0.1"  # every node of a local stack is reached on the loopback


def quiet(_: str) -> None:
    return None


@dataclass(eq=False)
class Stack:
    settings: Settings
    progress: Progress = field(default=quiet, repr=False)

    # -- where things are ----------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.settings.state_dir

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    @property
    def secrets_path(self) -> Path:
        return self.root / "secrets.json"

    @property
    def passfile(self) -> Path:
        return self.root / "pgpass"

    @property
    def password_file(self) -> Path:
        """The superuser's password for supervised programs, which read it from a file."""
        return self.run_dir / "postgres.password"

    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    @property
    def name(self) -> str:
        return self.settings.compose_project_name

    @property
    def marker(self) -> str:
        """Set in every supervised program's environment, to find them if orphaned."""
        return f"EXAPG_STACK={self.root}"

    def log_file(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"

    # -- resolved on first use ---------------------------------------------------------------
    @cached_property
    def user(self) -> ServiceUser:
        return ServiceUser.resolve(self.settings.service_user)

    @cached_property
    def binaries(self) -> PgBinaries:
        return find_binaries(self.settings.pg_bindir)

    @cached_property
    def secrets(self) -> Secrets:
        if credentials.read_secrets(self.secrets_path) is None:
            raise ExaPGError(f"no secrets in {self.root}: run 'exapg up' first")
        return credentials.load_or_create(self.secrets_path, self.settings, self.user, apply_given=False)

    def forget_secrets(self) -> None:
        """The next use of `secrets` reads the file again (after `up` changed it)."""
        self.__dict__.pop("secrets", None)

    # -- what is set up ------------------------------------------------------------------------
    def state(self) -> StackState | None:
        return state_file.load(self.state_path)

    def require_state(self) -> StackState:
        current = self.state()
        if current is None:
            raise ExaPGError(
                f"no ExaPG stack '{self.name}' has been set up (state dir {self.root}): run 'exapg up' first"
            )
        return current

    def require_cluster(self, command: str) -> StackState:
        """The stack's state, if it runs in cluster mode; else one line on what to do (exit 2)."""
        current = self.require_state()
        if current.mode != Mode.CLUSTER:
            raise InvalidParameterError(
                f"'exapg {command}' needs a cluster-mode stack (Citus workers); stack "
                f"'{self.name}' runs in {current.mode} mode: start it with 'exapg up --mode cluster'"
            )
        return current

    def topology_of(self, state: StackState) -> Topology:
        return Topology.build(self.settings, state.mode, state.workers, state.standby, state.primary)

    @property
    def topology(self) -> Topology:
        return self.topology_of(self.require_state())

    # -- reaching the nodes ----------------------------------------------------------------------
    def dsn(
        self, node: str | Node | None = None, *, dbname: str | None = None, pooled: bool = False,
        secrets: Secrets | None = None,
    ) -> Dsn:
        """How to reach a node (by default the primary; or pgBouncer, with pooled) as the
        superuser: the stack's database unless `dbname` says otherwise; `secrets` while `up`
        has not stored them yet."""
        if pooled:
            port = self.settings.pgbouncer_port
        elif isinstance(node, Node):
            port = node.port
        else:
            topology = self.topology
            port = (topology.coordinator if node is None else topology.node(node)).port
        password = (secrets or self.secrets).postgres_password
        return Dsn(LOOPBACK, port, dbname or self.settings.postgres_db, self.settings.postgres_user, password)

    def admin_dsn(self, node: str | Node, secrets: Secrets | None = None) -> Dsn:
        """The node's `postgres` database, which exists before the stack's own does."""
        return self.dsn(node, dbname="postgres", secrets=secrets)

    def server(self, node: Node) -> PostgresServer:
        return PostgresServer(
            datadir=node.datadir, port=node.port, binaries=self.binaries, user=self.user,
            socket_dir=self.run_dir, logfile=self.log_file(node.name),
            # libpq inside the server (Citus shard moves, logical replication) authenticates with it
            env={"PGPASSFILE": str(self.passfile)},
        )

    # -- files it owns ---------------------------------------------------------------------------
    def write_if_changed(self, path: Path, text: str) -> bool:
        """Write a 0600 file owned by the service user; False when it already said so."""
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return False
        self.user.write_file(path, text, 0o600)
        return True

    def touch(self, path: Path) -> None:
        if not path.exists():
            self.user.write_file(path, "", 0o600)
