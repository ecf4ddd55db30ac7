"""The local runtime: the whole stack on this machine, no Docker.

PostgreSQL nodes are driven with pg_ctl and tracked through their pidfiles; every other
long-running daemon runs under the stack's own supervisord. Everything a stack owns
lives in its state directory:

    state.json  secrets.json  pgpass  .lock
    data/<node>/          PostgreSQL data directories (removed only by `down --volumes`)
    conf/                 generated configuration (supervisord, pgBouncer)
    run/                  sockets and pidfiles
    logs/                 one log per service

Every step of `up` is idempotent, so an interrupted `up` is finished by the next one.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import psycopg
from psycopg import sql

from exapg import config_check
from exapg import credentials as secret_store
from exapg import state as state_file
from exapg.api.service import api_program
from exapg.cluster import citus
from exapg.cluster.health import lag_text
from exapg.cluster.probe import NodeReport, direct_connector, inspect_cluster
from exapg.cluster.topology import Mode, Node, Topology
from exapg.config_check import port_free
from exapg.credentials import REPLICATION_USER, Secrets
from exapg.errors import (
    CommandError,
    ConfigurationError,
    ExaPGError,
    InvalidParameterError,
    MissingDependencyError,
    OperationTimeoutError,
)
from exapg.exporter.service import exporter_program
from exapg.monitoring import local as monitoring
from exapg.postgres import conf as pgconf
from exapg.postgres import hugepages
from exapg.postgres.binaries import PgBinaries, find_binaries
from exapg.postgres.conn import Dsn, connect
from exapg.postgres.ctl import PgIsReady, PostgresServer, pg_isready, read_pidfile
from exapg.proc import ServiceUser, run
from exapg.runtime import logs as logfiles
from exapg.runtime import pgbouncer, processes
from exapg.runtime.base import Program
from exapg.runtime.supervisor import ProcessInfo, Supervisor, reap_orphans
from exapg.settings import Settings
from exapg.state import StackState
from exapg.status import ServiceState, ServiceStatus

Progress = Callable[[str], None]
SUPERVISOR_STATES = {
    "RUNNING": ServiceState.RUNNING,
    "STARTING": ServiceState.STARTING,
    "BACKOFF": ServiceState.STARTING,
    "STOPPING": ServiceState.STOPPED,
    "STOPPED": ServiceState.STOPPED,
    "EXITED": ServiceState.STOPPED,
    "FATAL": ServiceState.FAILED,
}


def _quiet(_: str) -> None:
    return None


class LocalRuntime:
    def __init__(self, settings: Settings, progress: Progress = _quiet) -> None:
        self.settings = settings
        self.progress = progress
        self.root = settings.state_dir
        self.conf_dir = self.root / "conf"
        self.run_dir = self.root / "run"
        self.log_dir = self.root / "logs"
        self.state_path = self.root / "state.json"
        self.secrets_path = self.root / "secrets.json"
        self.passfile = self.root / "pgpass"
        self.password_file = self.run_dir / "postgres.password"  # for supervised programs

    # -- resolved lazily: a missing dependency only fails the commands that need it --------
    @cached_property
    def user(self) -> ServiceUser:
        return ServiceUser.resolve(self.settings.service_user)

    @cached_property
    def binaries(self) -> PgBinaries:
        return find_binaries(self.settings.pg_bindir)

    @cached_property
    def supervisor(self) -> Supervisor:
        return Supervisor(self.conf_dir, self.run_dir, self.log_dir, self.user)

    def state(self) -> StackState | None:
        return state_file.load(self.state_path)

    def require_state(self) -> StackState:
        current = self.state()
        if current is None:
            raise ExaPGError(
                f"no ExaPG stack '{self.settings.compose_project_name}' has been set up "
                f"(state dir {self.root}): run 'exapg up' first"
            )
        return current

    @property
    def topology(self) -> Topology:
        current = self.require_state()
        return Topology.build(self.settings, current.mode, current.workers, current.standby)

    @cached_property
    def secrets(self) -> Secrets:
        stored = secret_store.read_secrets(self.secrets_path)
        if stored is None:
            raise ExaPGError(f"no secrets in {self.root}: run 'exapg up' first")
        return secret_store.load_or_create(self.secrets_path, self.settings, self.user, apply_given=False)

    def dsn(self, node: str = "coordinator", *, pooled: bool = False) -> Dsn:
        port = self.settings.pgbouncer_port if pooled else self.topology.node(node).port
        return Dsn("127.0.0.1", port, self.settings.postgres_db, self.settings.postgres_user,
                   self.secrets.postgres_password)

    def server(self, node: Node) -> PostgresServer:
        return PostgresServer(
            datadir=node.datadir, port=node.port, binaries=self.binaries, user=self.user,
            socket_dir=self.run_dir, logfile=self.log_dir / f"{node.name}.log",
            # libpq inside the server (Citus shard moves, logical replication) authenticates with it
            env={"PGPASSFILE": str(self.passfile)},
        )

    # -- up ---------------------------------------------------------------------------------
    def up(
        self, mode: str | None = None, workers: int | None = None, standby: bool | None = None
    ) -> list[str]:
        """Bring the stack to its desired state; returns what was done (empty: nothing to do).

        Every settings problem is reported before anything is written, started or changed."""
        self.validate()
        self._check_state_dir()
        previous = self.state()
        desired = self._desired_state(previous, mode, workers, standby)
        topology = Topology.build(self.settings, desired.mode, desired.workers, desired.standby)
        self._preflight(desired)
        self._prepare_dirs()
        with state_file.locked(self.root / ".lock"):
            retiring = self._retiring(previous, topology)
            # Until the nodes that go are gone, the state keeps them: a failed drain or an
            # interrupted up leaves them known to status, stop and the next attempt.
            if not retiring:
                state_file.save(self.state_path, desired, self.user)
            self.__dict__.pop("secrets", None)
            secrets, old_password = secret_store.pending(self.secrets_path, self.settings)
            if old_password is None:
                secret_store.save(self.secrets_path, secrets, self.user)
            self.user.write_file(self.passfile, secret_store.pgpass(secrets, self.settings.postgres_user))
            self.user.write_file(self.password_file, secrets.postgres_password, 0o600)
            actions: list[str] = []
            coordinator = topology.coordinator
            actions += self._ensure_node(coordinator, topology, secrets, old_password)
            actions += self._bootstrap(coordinator, topology, secrets)
            if retiring:
                actions += self._retire(retiring, topology, secrets)
                state_file.save(self.state_path, desired, self.user)
            for node in topology.nodes[1:]:
                actions += self._ensure_node(node, topology, secrets, old_password)
            if old_password is not None:
                secret_store.save(self.secrets_path, secrets, self.user)
            if topology.mode == Mode.CLUSTER:
                actions += self._ensure_citus(topology, secrets)
            actions += self._ensure_programs(topology, secrets, restart=old_password is not None)
        return actions

    def validate(self) -> None:
        """What `exapg config validate` checks, with the ports this stack holds counted as free."""
        config_check.require_valid(self.settings, ours=self.own_ports(), backend="local")

    def own_ports(self) -> set[int]:
        """TCP ports this stack's own processes listen on: its postmasters and its supervised
        programs (under a live supervisor or left by a dead one)."""
        pids = set(processes.marked(self._marker))
        data = self.root / "data"
        if data.is_dir():
            for datadir in data.iterdir():
                found = read_pidfile(datadir)
                if found is not None:
                    pids.add(found.pid)
        return set(processes.listening_ports(pids))

    def _desired_state(
        self, previous: StackState | None, mode: str | None, workers: int | None,
        standby: bool | None,
    ) -> StackState:
        chosen = Mode(mode) if mode else (previous.mode if previous else Mode.HA)
        count = workers if workers is not None else (previous.workers if previous else 2)
        if chosen != Mode.CLUSTER:
            count = 0
        if standby is None:
            standby = chosen == Mode.HA or bool(previous and previous.standby and chosen == previous.mode)
        if previous and (previous.mode, previous.workers, previous.standby) == (chosen, count, standby):
            return previous
        return StackState.new(self.settings.compose_project_name, chosen, count, standby)

    def _preflight(self, desired: StackState) -> None:
        """Fail before touching anything: binaries, Citus, the service user, free ports."""
        self.binaries.major_version  # noqa: B018 - resolves and checks the binaries
        pgbouncer.binary()
        if desired.mode == Mode.CLUSTER and not self.binaries.has_extension("citus"):
            raise MissingDependencyError(
                "cluster mode needs the citus extension for PostgreSQL "
                f"{self.binaries.major_version}, which is not installed: install Citus "
                "(package postgresql-15-citus-12.1 from Citus's repository, or build it), "
                "or use --mode standalone|ha"
            )
        self.user  # noqa: B018
        self._check_python_reachable()

    def _check_state_dir(self) -> None:
        existing = next(p for p in [self.root, *self.root.parents] if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigurationError(
                f"state directory {self.root} is not writable ({existing} is not): "
                "set EXAPG_STATE_DIR to a writable directory"
            )
        blocked = _untraversable(self.root, self.user)
        if blocked is not None:
            raise ConfigurationError(
                f"the service user {self.user.name!r} cannot reach {self.root} ({blocked} denies it): "
                "set EXAPG_STATE_DIR to a directory it can reach, such as /var/lib/exapg"
            )

    def _prepare_dirs(self) -> None:
        try:
            for path, mode in [(self.root, 0o700), (self.root / "data", 0o700),
                               (self.conf_dir, 0o700), (self.run_dir, 0o700),
                               (self.log_dir, 0o750)]:
                self.user.make_dir(path, mode)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the state directory {self.root}: {exc.strerror}; "
                "set EXAPG_STATE_DIR to a writable directory"
            ) from None

    # -- PostgreSQL nodes ----------------------------------------------------------------------
    def _ensure_node(
        self, node: Node, topology: Topology, secrets: Secrets, old_password: str | None = None
    ) -> list[str]:
        server = self.server(node)
        actions = []
        if not server.initialized:
            self.progress(f"{node.name}: creating the data directory")
            self._create(node, server, topology, secrets)
            actions.append(f"{node.name}: data directory created")
        changed = self._write_node_conf(node, server, topology)
        if server.pidfile() is not None:
            if changed:
                self._reload(server)
                actions.append(f"{node.name}: configuration reloaded{self._pending_restart(node, secrets)}")
        else:
            self._check_port(node.port, node.name)
            self.progress(f"{node.name}: starting on port {node.port}")
            self._reserve_huge_pages(node, server)
            server.start(self.settings.start_timeout)
            server.wait_ready(self.settings.start_timeout)
            actions.append(f"{node.name}: started on port {node.port}")
        if old_password is not None and not node.is_standby:
            actions += self._change_password(node, secrets, old_password)
        if node.is_standby:
            self._wait_streaming(node, secrets)
        return actions

    def _receiver_status(self, node: Node, secrets: Secrets) -> str:
        """The standby's WAL receiver: 'streaming' when it follows its primary."""
        try:
            with connect(self._admin_dsn(node, secrets), statement_timeout_ms=5000) as conn:
                row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
        except (ExaPGError, psycopg.Error):
            return "unknown"
        return str(row[0]) if row else "stopped"

    def _wait_streaming(self, node: Node, secrets: Secrets) -> None:
        deadline = time.monotonic() + self.settings.start_timeout
        while (status := self._receiver_status(node, secrets)) != "streaming":
            if time.monotonic() > deadline:
                raise OperationTimeoutError(
                    f"{node.name} runs but does not stream from {node.primary} (WAL receiver: {status}) "
                    f"after {self.settings.start_timeout:.0f}s: see {self.log_dir / (node.name + '.log')}"
                )
            time.sleep(0.1)

    def _change_password(self, node: Node, secrets: Secrets, old_password: str) -> list[str]:
        """POSTGRES_PASSWORD changed since the last up: set it on the node with the old one
        (a node that already takes the new one, after an interrupted up, is left alone)."""
        dsn = self._admin_dsn(node, secrets)
        try:
            connect(dsn).close()
            return []
        except ExaPGError:
            pass
        with connect(replace(dsn, password=old_password)) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(self.settings.postgres_user), sql.Literal(secrets.postgres_password)))
        return [f"{node.name}: password of {self.settings.postgres_user} changed (POSTGRES_PASSWORD)"]

    def _create(self, node: Node, server: PostgresServer, topology: Topology, secrets: Secrets) -> None:
        if not node.is_standby:
            pwfile = self.root / ".initdb-pw"
            self.user.write_file(pwfile, secrets.postgres_password + "\n", 0o600)
            try:
                server.initdb(self.settings.postgres_user, pwfile)
            finally:
                pwfile.unlink(missing_ok=True)
            return
        primary = topology.node(node.primary or "coordinator")
        try:
            server.basebackup(
                host="127.0.0.1", port=primary.port, user=REPLICATION_USER, slot=node.slot or "",
                passfile=self.passfile, timeout=max(600.0, self.settings.start_timeout),
            )
        except CommandError as exc:
            raise ExaPGError(
                f"{node.name}: cannot clone {primary.name} at 127.0.0.1:{primary.port} "
                f"({exc}): check that {primary.name} runs ('exapg status')"
            ) from None

    def _write_node_conf(self, node: Node, server: PostgresServer, topology: Topology) -> bool:
        """Render exapg.conf and pg_hba.conf; True when either changed."""
        params = pgconf.node_settings(
            port=node.port, listen=self.settings.listen_address, socket_dir=self.run_dir,
            name=f"{self.settings.compose_project_name}/{node.name}",
        )
        params.update(pgconf.analytics_tuning(self._node_resources(topology)))
        params["huge_pages"] = self.settings.huge_pages
        if topology.mode == Mode.CLUSTER:
            params.update(pgconf.citus_settings())
        if node.is_standby:
            primary = topology.node(node.primary or "coordinator")
            params["primary_conninfo"] = (
                f"host=127.0.0.1 port={primary.port} user={REPLICATION_USER} "
                f"passfile={self.passfile} application_name={node.name} connect_timeout=5"
            )
            params["primary_slot_name"] = node.slot or ""
            self._touch(node.datadir / "standby.signal")
        changed = self._write_if_changed(
            node.datadir / "exapg.conf", pgconf.render(params, f"ExaPG node {node.name}")
        )
        changed |= self._write_if_changed(node.datadir / "pg_hba.conf", pgconf.render_hba(REPLICATION_USER))
        pgconf.ensure_include(node.datadir / "postgresql.conf")
        return changed

    def _reserve_huge_pages(self, node: Node, server: PostgresServer) -> None:
        """As root, grow the kernel's huge page pool by what the node is about to map."""
        reserving = hugepages.can_reserve()
        if self.settings.huge_pages == "off" or (self.settings.huge_pages == "try" and not reserving):
            return  # nothing to reserve and nothing to check: PostgreSQL takes free pages if any
        needed = hugepages.pages_needed(self.binaries, server.datadir, self.user)
        if needed is None:
            return
        if reserving:
            with hugepages.pool_lock():
                added = hugepages.reserve(needed)
                if added:
                    self.huge_page_ledger.add(node.name, added)
        if self.settings.huge_pages == "on":
            pool = hugepages.read_pool()
            free = pool.available if pool else 0
            if free < needed:
                raise ConfigurationError(
                    f"{node.name}: EXAPG_HUGE_PAGES=on needs {needed} free huge pages, the kernel has {free}: "
                    "reserve them (sysctl vm.nr_hugepages), run 'exapg up' as root, or set EXAPG_HUGE_PAGES=try"
                )

    def _release_huge_pages(self, node: Node) -> None:
        """Give back the pages ExaPG reserved for a node once it no longer runs."""
        if (node.name not in self.huge_page_ledger.read() or not hugepages.can_reserve()
                or self.server(node).pidfile() is not None):
            return
        with hugepages.pool_lock():
            hugepages.release(self.huge_page_ledger.take(node.name))

    @property
    def huge_page_ledger(self) -> hugepages.Ledger:
        return hugepages.Ledger(self.root / "hugepages.json", self.user)

    def _node_resources(self, topology: Topology) -> pgconf.Resources:
        """This machine's (or EXAPG_MEMORY_LIMIT's) memory, shared by the stack's nodes."""
        machine = pgconf.machine_resources()
        memory = self.settings.memory_limit or machine.memory
        cpus = self.settings.cpu_limit or machine.cpus
        return pgconf.Resources(memory // len(topology.nodes), cpus)

    def _write_if_changed(self, path: Path, text: str) -> bool:
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return False
        self.user.write_file(path, text, 0o600)
        return True

    def _touch(self, path: Path) -> None:
        if not path.exists():
            self.user.write_file(path, "", 0o600)

    def _pending_restart(self, node: Node, secrets: Secrets) -> str:
        """Settings a reload cannot apply (e.g. shared_buffers), to tell the operator."""
        time.sleep(0.2)  # the postmaster re-reads its files asynchronously after SIGHUP
        try:
            with connect(self._admin_dsn(node, secrets)) as conn:
                names = [r[0] for r in conn.execute("SELECT name FROM pg_settings WHERE pending_restart")]
        except (ExaPGError, psycopg.Error):
            return ""
        return f" ({', '.join(names)} apply at the next 'exapg restart')" if names else ""

    def _reload(self, server: PostgresServer) -> None:
        run([self.binaries("pg_ctl"), "reload", "-D", server.datadir], timeout=30, user=self.user)

    def _check_port(self, port: int, service: str) -> None:
        if not port_free(self.settings.listen_address, port):
            raise ConfigurationError(
                f"port {port} for {service} is already in use by another process: free it or "
                f"choose another port in the settings (exapg config show)"
            )

    def _bootstrap(self, node: Node, topology: Topology, secrets: Secrets) -> list[str]:
        """Idempotent SQL on the coordinator: database, extensions, replication role and slots."""
        actions = self._ensure_database(node, topology, secrets)
        with connect(self._admin_dsn(node, secrets)) as conn:
            _ensure_replication_role(conn, secrets.replication_password)
            for standby in topology.standbys:
                conn.execute(
                    "SELECT pg_create_physical_replication_slot(%s) WHERE NOT EXISTS "
                    "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)",
                    (standby.slot, standby.slot),
                )
        return actions

    def _admin_dsn(self, node: Node, secrets: Secrets) -> Dsn:
        return Dsn("127.0.0.1", node.port, "postgres", self.settings.postgres_user, secrets.postgres_password)

    def _ensure_database(self, node: Node, topology: Topology, secrets: Secrets) -> list[str]:
        actions = []
        with connect(self._admin_dsn(node, secrets)) as conn:
            db = self.settings.postgres_db
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
                actions.append(f"{node.name}: database {db} created")
        wanted = ["citus", *citus.OPTIONAL_EXTENSIONS, "pg_stat_statements"] if topology.mode == Mode.CLUSTER \
            else ["pg_stat_statements"]
        with connect(self.dsn_for(node, secrets)) as conn:
            # Only when missing: on a worker in Citus's metadata, even IF NOT EXISTS DDL is refused.
            present = {row[0] for row in conn.execute("SELECT extname FROM pg_extension").fetchall()}
            available = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions").fetchall()}
            for extension in (e for e in wanted if e not in present and e in available):
                conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(extension)))
        return actions

    # -- Citus -----------------------------------------------------------------------------------
    def _ensure_citus(self, topology: Topology, secrets: Secrets) -> list[str]:
        """Extension on every worker, coordinator host set, every worker registered."""
        actions = []
        for worker in topology.workers:
            actions += self._ensure_database(worker, topology, secrets)
        with connect(self.dsn_for(topology.coordinator, secrets)) as conn:
            citus.set_auth(conn, self.settings.postgres_user, secrets.postgres_password)
            citus.set_coordinator(conn, "127.0.0.1", topology.coordinator.port)
            for worker in topology.workers:
                if citus.register_worker(conn, "127.0.0.1", worker.port):
                    actions.append(f"{worker.name}: registered with the coordinator")
        return actions

    def _retiring(self, previous: StackState | None, topology: Topology) -> list[Node]:
        """Nodes of the previous topology that the new one no longer has (last worker first)."""
        if previous is None:
            return []
        old = Topology.build(self.settings, previous.mode, previous.workers, previous.standby)
        keep = {node.name for node in topology.nodes}
        return [node for node in reversed(old.nodes[1:]) if node.name not in keep]

    def _retire(self, nodes: list[Node], topology: Topology, secrets: Secrets) -> list[str]:
        """Scale in: drain a worker off Citus first (refusing rather than losing a shard),
        drop a standby's slot; then stop the node and set its data directory aside."""
        actions = []
        for node in nodes:
            if not node.is_standby:
                self.progress(f"{node.name}: draining its shards to the other workers")
                with connect(self.dsn_for(topology.coordinator, secrets), statement_timeout_ms=0) as conn:
                    citus.remove_worker(conn, "127.0.0.1", node.port)
            self.server(node).stop(timeout=self.settings.start_timeout)
            self._release_huge_pages(node)
            if node.is_standby:
                self._drop_slot(topology.coordinator, node, secrets)
            aside = node.datadir.with_name(f".removed-{node.name}-{int(time.time())}")
            if node.datadir.exists():
                os.replace(node.datadir, aside)
            verb = "stopped" if node.is_standby else "drained, removed and stopped"
            actions.append(f"{node.name}: {verb} (data kept in {aside})")
        return actions

    def _drop_slot(self, primary: Node, standby: Node, secrets: Secrets) -> None:
        """Once the standby is stopped its slot is inactive: drop it, or it keeps WAL for ever."""
        with connect(self.dsn_for(primary, secrets)) as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE slot_name = %s", (standby.slot,))

    def require_cluster(self, command: str) -> StackState:
        """The stack's state, if it runs in cluster mode; else one line on what to do (exit 2)."""
        current = self.require_state()
        if current.mode != Mode.CLUSTER:
            raise InvalidParameterError(
                f"'exapg {command}' needs a cluster-mode stack (Citus workers); stack "
                f"'{self.settings.compose_project_name}' runs in {current.mode} mode: "
                "start it with 'exapg up --mode cluster'"
            )
        return current

    def rebalance(self, wait: bool = True) -> list[str]:
        """Start Citus's background rebalance and (by default) follow it to the end."""
        self.require_cluster("rebalance")
        topology = self.topology
        with connect(self.dsn(), statement_timeout_ms=0) as conn:
            job = citus.start_rebalance(conn)
            if job is None:
                return ["shards are balanced: nothing to move"]
            if not wait:
                return [f"rebalance job {job} started in the background"]
            citus.wait_rebalance(conn, job, timeout=3600, progress=self.progress)
        return [f"rebalance job {job} finished across {len(topology.workers)} workers"]

    def dsn_for(self, node: Node, secrets: Secrets) -> Dsn:
        return Dsn("127.0.0.1", node.port, self.settings.postgres_db, self.settings.postgres_user,
                   secrets.postgres_password)

    # -- supervised programs -----------------------------------------------------------------
    @property
    def _marker(self) -> str:
        """Set in every supervised program's environment, to find them if orphaned."""
        return f"EXAPG_STACK={self.root}"

    def programs(self, topology: Topology, write_files: bool = False) -> list[Program]:
        """Every supervised daemon of this topology, in start order (no database access);
        with write_files, also (re)write the monitoring configuration they read."""
        s = self.settings
        programs = [pgbouncer.program(self.conf_dir / "pgbouncer.ini", s.pgbouncer_port)]
        targets: dict[str, str] = {}
        if topology.standbys:
            programs.append(exporter_program(
                settings=s, password_file=self.password_file, primary_port=topology.coordinator.port,
                standby_ports=[n.port for n in topology.standbys], log_dir=self.log_dir,
            ))
            targets["replication_exporter"] = f"127.0.0.1:{s.exporter_port}"
        programs.append(api_program(
            settings=s, state_dir=self.root, log_dir=self.log_dir, env=s.to_environment(),
        ))
        programs += monitoring.monitoring_programs(
            settings=s, state_dir=self.root, password_file=self.password_file,
            coordinator_port=topology.coordinator.port, targets=targets, write_files=write_files,
        )
        key, value = self._marker.split("=", 1)
        return [replace(p, environment={**p.environment, key: value}) for p in programs]

    def _check_python_reachable(self) -> None:
        """Supervised Python programs run as the service user: it must reach this Python."""
        import exapg

        for path in (Path(sys.executable).resolve(), Path(sys.base_prefix), Path(exapg.__file__).parent):
            blocked = _untraversable(path / "x", self.user)
            if blocked is not None:
                raise ConfigurationError(
                    f"the service user {self.user.name!r} cannot run ExaPG's Python ({blocked} "
                    f"denies it, on the way to {path}): install ExaPG into a virtualenv made by a "
                    "Python it can reach (make venv PYTHON=/usr/bin/python3) in a directory it can enter"
                )

    def _write_pgbouncer_files(self, topology: Topology, secrets: Secrets) -> None:
        userlist = self.conf_dir / "userlist.txt"
        with connect(self.dsn_for(topology.coordinator, secrets)) as conn:
            secret = pgbouncer.scram_secret(conn, self.settings.postgres_user)
        self._write_if_changed(userlist, pgbouncer.render_userlist(self.settings.postgres_user, secret))
        self._write_if_changed(self.conf_dir / "pgbouncer.ini", pgbouncer.render_ini(
            self.settings, coordinator_port=topology.coordinator.port, auth_file=userlist,
            socket_dir=self.run_dir,
        ))

    def _ensure_programs(self, topology: Topology, secrets: Secrets, restart: bool = False) -> list[str]:
        self._write_pgbouncer_files(topology, secrets)
        programs = self.programs(topology, write_files=True)
        identifier = f"exapg-{self.settings.compose_project_name}"
        changed = self.supervisor.write(programs, identifier)
        actions = []
        if not self.supervisor.running():
            reaped = reap_orphans(self._marker)
            if reaped:
                actions.append(f"stopped {len(reaped)} process(es) left by a dead supervisor")
            for program in programs:
                if program.port:
                    self._check_port(program.port, program.name)
            self.progress("starting the process supervisor")
            self.supervisor.start()
            actions += [f"{p.name}: started" + (f" on port {p.port}" if p.port else "") for p in programs]
        elif restart:
            self.supervisor.apply()
            actions += [f"{name}: restarted with the new password" for name in self.supervisor.restart_all()]
        elif changed:
            actions += [f"{name}: (re)started with new configuration" for name in self.supervisor.apply()]
        for name, info in self.supervisor.processes().items():
            if SUPERVISOR_STATES.get(info.state) in (ServiceState.STOPPED, ServiceState.FAILED):
                self.supervisor.start_process(name)
                actions.append(f"{name}: was {info.state.lower()}, started again")
        self._wait_programs(programs)
        return actions

    def _wait_programs(self, programs: list[Program]) -> None:
        deadline = time.monotonic() + self.settings.start_timeout
        for program in programs:
            while not self._program_healthy(program):
                if time.monotonic() > deadline:
                    raise OperationTimeoutError(
                        f"{program.name} is not healthy after {self.settings.start_timeout:.0f}s: "
                        f"see {self.log_dir / (program.name + '.log')}"
                    )
                time.sleep(0.05)

    def _program_healthy(self, program: Program) -> bool:
        if program.health_url:
            return _http_ok(program.health_url)
        if program.port:
            answer = pg_isready(self.binaries, "127.0.0.1", program.port, timeout=2,
                                user=self.settings.postgres_user, dbname=self.settings.postgres_db)
            return answer == PgIsReady.ACCEPTING
        return True

    # -- stop / down ---------------------------------------------------------------------------
    def stop(self) -> list[str]:
        """Stop every service gracefully; data and configuration are kept."""
        topology = self.topology
        actions = []
        with state_file.locked(self.root / ".lock"):
            if self.supervisor.shutdown():
                actions.append("supervised services stopped")
            elif reaped := reap_orphans(self._marker):  # its supervisor died: they run on
                actions.append(f"stopped {len(reaped)} process(es) left by a dead supervisor")
            primaries = [n for n in topology.nodes if not n.is_standby]
            for node in [*primaries, *topology.standbys]:
                self.progress(f"{node.name}: stopping")
                if self.server(node).stop(timeout=self.settings.start_timeout):
                    actions.append(f"{node.name}: stopped")
                self._release_huge_pages(node)
        return actions

    def down(self, volumes: bool = False) -> list[str]:
        """Stop, remove generated files; with volumes=True also every data directory."""
        if not self.root.exists():
            return []
        actions = self.stop() if self.state() is not None else []
        if volumes:
            shutil.rmtree(self.root)
            return [*actions, f"removed {self.root} (data, secrets, logs)"]
        for path in (self.conf_dir, self.run_dir):
            shutil.rmtree(path, ignore_errors=True)
        return [*actions, "generated configuration removed; data kept in " + str(self.root / "data")]

    # -- status ----------------------------------------------------------------------------------
    def status(self) -> list[ServiceStatus]:
        topology = self.topology
        reports = self._standby_reports(topology)
        result = [self._node_status(node, reports.get(node.name)) for node in topology.nodes]
        if topology.workers:
            result = self._with_citus_membership(result, topology)
        infos = self.supervisor.processes()
        programs = self.programs(topology)
        unsupervised = self._unsupervised(programs, infos)
        for program in programs:
            result.append(self._program_status(program, infos.get(program.name), unsupervised))
        return result

    def _standby_reports(self, topology: Topology) -> dict[str, NodeReport]:
        """Standbys and their primaries inspected as the API does: one verdict (cluster/health.py)."""
        if not topology.standbys:
            return {}
        primaries = {n.primary for n in topology.standbys}
        nodes = [n for n in topology.nodes if n.is_standby or n.name in primaries]
        try:
            secrets = self.secrets
        except ExaPGError:
            return {}  # an up that stopped before storing them: nothing runs to inspect
        connector = direct_connector(lambda name: self.dsn_for(topology.node(name), secrets))
        return {r.name: r for r in inspect_cluster(topology, connector, nodes=nodes)}

    def _unsupervised(self, programs: list[Program], infos: dict[str, ProcessInfo]) -> dict[int, int]:
        """Port -> pid of this stack's programs that run although the supervisor does not say
        so (it died, or lost them): found by their mark and their listening socket."""
        alive = (ServiceState.RUNNING, ServiceState.STARTING)
        if all(p.name in infos and SUPERVISOR_STATES.get(infos[p.name].state) in alive for p in programs):
            return {}
        return processes.listening_ports(processes.marked(self._marker))

    def _with_citus_membership(self, statuses: list[ServiceStatus], topology: Topology) -> list[ServiceStatus]:
        """Workers as Citus sees them (pg_dist_node): a running but inactive worker is unhealthy."""
        try:
            with connect(self.dsn(), statement_timeout_ms=5000) as conn:
                members = {w.port: w for w in citus.workers(conn)}
        except (ExaPGError, psycopg.Error):
            return statuses
        ports = {w.port for w in topology.workers}
        result = []
        for status in statuses:
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

    def _node_status(self, node: Node, report: NodeReport | None = None) -> ServiceStatus:
        server = self.server(node)
        pid = server.pidfile()
        if pid is None:
            detail = "not initialized" if not server.initialized else "not running"
            return ServiceStatus(node.name, node.role, node.port, None, ServiceState.STOPPED, False, detail)
        ready = server.isready(timeout=2)
        state = ServiceState.RUNNING if pid.status in ("ready", "standby") else ServiceState.STARTING
        detail = f"hot standby of {node.primary}" if node.is_standby else "primary"
        healthy = ready == PgIsReady.ACCEPTING
        if not healthy:
            detail = f"pg_isready: {ready.name.lower().replace('_', ' ')}"
        elif node.is_standby and report is not None:
            healthy = report.healthy
            lag = lag_text(report.upstream.lag_bytes, report.upstream.lag_seconds) if report.upstream else ""
            detail = report.error or ", ".join(p for p in (detail, lag) if p)
        return ServiceStatus(node.name, node.role, node.port, pid.pid, state, healthy, detail)

    def _program_status(
        self, program: Program, info: ProcessInfo | None, unsupervised: dict[int, int] | None = None,
    ) -> ServiceStatus:
        """The supervisor's view, checked against the processes: a program it does not run
        but whose marked process holds the program's port is running, and says so."""
        state = SUPERVISOR_STATES.get(info.state, ServiceState.UNKNOWN) if info else ServiceState.STOPPED
        pid = info.pid if info else None
        detail = f"http://127.0.0.1:{program.port}/" if program.health_url else "supervised"
        if state not in (ServiceState.RUNNING, ServiceState.STARTING):
            orphan = (unsupervised or {}).get(program.port) if program.port else None
            if orphan is None:
                return ServiceStatus(program.name, program.role, program.port, pid, state, False,
                                     "not running" if info is None else f"supervisor: {info.state.lower()}")
            state, pid = ServiceState.RUNNING, orphan
            detail = "running without its supervisor: 'exapg up' takes it back"
        healthy = self._program_healthy(program)
        return ServiceStatus(program.name, program.role, program.port, pid, state, healthy, detail)

    # -- logs ------------------------------------------------------------------------------------
    def log_files(self) -> dict[str, Path]:
        return logfiles.service_logs(self.log_dir)

    def logs(
        self, service: str | None, follow: bool, since: float | None, timestamps: bool
    ) -> Iterator[str]:
        files = self.log_files()
        if service is not None:
            if service not in files:
                names = ", ".join(sorted(files)) or "none yet"
                raise ExaPGError(f"no logs for service {service!r} (services with logs: {names})")
            files = {service: files[service]}
        return logfiles.read(files, follow=follow, since=since, timestamps=timestamps)

    def scale(self, workers: int, rebalance: bool = True) -> list[str]:
        current = self.require_cluster("scale")
        if workers < 1:
            raise InvalidParameterError("a cluster needs at least one worker")
        actions = self.up(mode=str(Mode.CLUSTER), workers=workers)
        if rebalance and workers > current.workers:
            actions += self.rebalance()
        return actions


def _ensure_replication_role(conn: psycopg.Connection, password: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (REPLICATION_USER,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} WITH LOGIN REPLICATION PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(REPLICATION_USER), sql.Literal(password)
        )
    )


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def _untraversable(path: Path, user: ServiceUser) -> Path | None:
    """The first existing ancestor of `path` that `user` may not enter, if any."""
    if not user.switch:
        return None
    for parent in reversed(path.parents):
        if not parent.exists():
            break
        st = parent.stat()
        if st.st_uid == user.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == user.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return parent
    return None
