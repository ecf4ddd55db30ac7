"""The life cycle of a local stack's PostgreSQL nodes: create, configure, start, prepare, stop.

A primary is created with initdb, a standby cloned from its primary with pg_basebackup;
every node's settings live in exapg.conf (included from postgresql.conf) and are
reloaded when they change. As root, a node's huge pages are reserved before it starts
and given back once it stops.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import psycopg

from exapg.cluster import citus
from exapg.cluster.topology import Mode, Node, Topology
from exapg.credentials import REPLICATION_USER, Secrets
from exapg.errors import CommandError, ConfigurationError, ExaPGError, OperationTimeoutError
from exapg.postgres import bootstrap as sql_steps
from exapg.postgres import conf as pgconf
from exapg.postgres import hugepages
from exapg.postgres.conn import Dsn, connect
from exapg.postgres.ctl import PostgresServer
from exapg.proc import run, wait_until
from exapg.runtime import archiving, processes
from exapg.runtime.preflight import check_port
from exapg.stack import LOOPBACK, Stack

PG_STAT_STATEMENTS = "pg_stat_statements"
PRELOAD = "shared_preload_libraries"


def ensure_node(stack: Stack, node: Node, topology: Topology, secrets: Secrets,
                old_password: str | None = None) -> list[str]:
    """Create the node if need be, (re)write its configuration, start it or reload it."""
    server = stack.server(node)
    actions = []
    if not server.initialized:
        stack.progress(f"{node.name}: creating the data directory")
        create(stack, node, server, topology, secrets)
        actions.append(f"{node.name}: data directory created")
    changed = write_conf(stack, node, topology)
    if server.pidfile() is not None:
        if changed:
            actions.append(apply_conf(stack, node, server, secrets, old_password))
    else:
        check_port(stack, node.port, node.name)
        start(stack, node, server)
        actions.append(f"{node.name}: started on port {node.port}")
    if old_password is not None and not node.is_standby:
        actions += change_password(stack, node, secrets, old_password)
    if node.is_standby:
        wait_streaming(stack, node, secrets)
    else:
        actions += archiving.ensure_stanza(stack, node, secrets)
    return actions


def create(stack: Stack, node: Node, server: PostgresServer, topology: Topology, secrets: Secrets) -> None:
    if not node.is_standby:
        pwfile = stack.root / ".initdb-pw"
        stack.user.write_file(pwfile, secrets.postgres_password + "\n", 0o600)
        try:
            server.initdb(stack.settings.postgres_user, pwfile)
        finally:
            pwfile.unlink(missing_ok=True)
        return
    primary = topology.node(node.primary or topology.coordinator.name)
    try:
        server.basebackup(
            host=LOOPBACK, port=primary.port, user=REPLICATION_USER, slot=node.slot or "",
            passfile=stack.passfile, timeout=max(600.0, stack.settings.start_timeout),
        )
    except CommandError as exc:
        raise ExaPGError(
            f"{node.name}: cannot clone {primary.name} at {LOOPBACK}:{primary.port} "
            f"({exc}): check that {primary.name} runs ('exapg status')"
        ) from None


def write_conf(stack: Stack, node: Node, topology: Topology, *, restoring: bool = False) -> bool:
    """Render exapg.conf and pg_hba.conf; True when either changed. `restoring`: the node is
    about to replay archived WAL (a restore), as a standby replays its primary's."""
    settings = stack.settings
    params = pgconf.server_settings(
        port=node.port, listen=settings.listen_address, socket_dir=stack.run_dir,
        name=f"{stack.name}/{node.name}", resources=node_resources(stack, topology),
        huge_pages=settings.huge_pages, citus=topology.mode == Mode.CLUSTER,
    )
    params.update(archiving.node_settings(stack, node))
    if node.is_standby or restoring:
        # Citus raises max_prepared_transactions to twice max_connections where it is loaded, and a
        # node replaying WAL stops at WAL written with a higher value: a standby keeps Citus's
        # value in every mode, so that no change of mode leaves it short while its primary restarts;
        # so does a restore, which replays the WAL of a promoted standby still running with it.
        params["max_prepared_transactions"] = str(2 * int(params["max_connections"]))
    if node.is_standby:
        primary = topology.node(node.primary or topology.coordinator.name)
        params["primary_conninfo"] = (
            f"host={LOOPBACK} port={primary.port} user={REPLICATION_USER} "
            f"passfile={stack.passfile} application_name={node.name} connect_timeout=5"
        )
        params["primary_slot_name"] = node.slot or ""
        stack.touch(node.datadir / "standby.signal")
    archiving.write_config(stack, topology)
    changed = stack.write_if_changed(node.datadir / "exapg.conf", pgconf.render(params, f"ExaPG node {node.name}"))
    changed |= stack.write_if_changed(node.datadir / "pg_hba.conf", pgconf.render_hba(REPLICATION_USER))
    pgconf.ensure_include(node.datadir / "postgresql.conf")
    return changed


def node_resources(stack: Stack, topology: Topology) -> pgconf.Resources:
    """This machine's (or EXAPG_MEMORY_LIMIT's) memory, shared by the stack's nodes."""
    machine = pgconf.machine_resources()
    memory = stack.settings.memory_limit or machine.memory
    cpus = stack.settings.cpu_limit or machine.cpus
    return pgconf.Resources(memory // len(topology.nodes), cpus)


ORPHAN_GRACE = 30.0  # seconds the processes of a killed postmaster get to exit on their own


def start(stack: Stack, node: Node, server: PostgresServer) -> None:
    stack.progress(f"{node.name}: starting on port {node.port}")
    clear_dead_postmaster(node, server)
    reserve_huge_pages(stack, node, server)
    server.start(stack.settings.start_timeout)
    server.wait_ready(stack.settings.start_timeout)


def clear_dead_postmaster(node: Node, server: PostgresServer) -> bool:
    """A killed postmaster can linger as a zombie until its parent reaps it; PostgreSQL then
    takes its postmaster.pid and its socket's lock file for a live server's and refuses to
    start. Once the processes it left in the data directory have exited, the stale files go.
    True when postmaster.pid was removed."""
    if server.pidfile() is not None:
        return False
    if (node.datadir / "postmaster.pid").exists() and not leftovers_gone(node, ORPHAN_GRACE):
        return False  # PostgreSQL's own check then refuses, and says why
    return server.remove_stale_pidfile()


def leftovers_gone(node: Node, grace: float) -> bool:
    """Wait up to `grace` seconds for the processes a dead postmaster left in the node's data
    directory to exit (they still hold its shared memory); True once none is left."""
    return wait_until(lambda: not processes.in_data_dir(node.datadir), grace, interval=0.1)


def apply_conf(stack: Stack, node: Node, server: PostgresServer, secrets: Secrets,
               old_password: str | None = None) -> str:
    """A running node takes its new configuration: a reload, or a restart when Citus comes or
    goes from the libraries it preloads (a change of mode). Citus works only preloaded, and a
    server still running it once its files lose Citus's settings falls back to Citus's
    defaults (citus.node_conninfo 'sslmode=require', against nodes without SSL)."""
    if citus_comes_or_goes(stack, node, secrets, old_password):
        stack.progress(f"{node.name}: restarting (Citus comes or goes with the mode)")
        stop(stack, node)
        start(stack, node, server)
        return f"{node.name}: restarted ({PRELOAD} changed with the mode)"
    reload(stack, server)
    return f"{node.name}: configuration reloaded{_pending_restart(stack, node, secrets)}"


def citus_comes_or_goes(stack: Stack, node: Node, secrets: Secrets, old_password: str | None) -> bool:
    """Whether the running node and its files disagree on preloading Citus (False when the node
    does not answer: it is reloaded, as before); the superuser may still have its old password
    while a new one is pending."""
    try:
        with superuser_connection(stack.admin_dsn(node, secrets), old_password) as conn:
            running, in_files = sql_steps.preload_libraries(conn)
    except (ExaPGError, psycopg.Error):
        return False
    return ("citus" in running) != ("citus" in in_files)


def superuser_connection(dsn: Dsn, old_password: str | None) -> psycopg.Connection:
    """Connect with the superuser's password, or with its old one while `up` has not set
    a changed password on the node yet."""
    try:
        return connect(dsn)
    except ExaPGError:
        if old_password is None:
            raise
    return connect(replace(dsn, password=old_password))


def reload(stack: Stack, server: PostgresServer) -> None:
    run([stack.binaries("pg_ctl"), "reload", "-D", server.datadir], timeout=30, user=stack.user)


def _pending_restart(stack: Stack, node: Node, secrets: Secrets) -> str:
    """Settings a reload cannot apply (e.g. shared_buffers), to tell the operator."""
    time.sleep(0.2)  # the postmaster re-reads its files asynchronously after SIGHUP
    try:
        with connect(stack.admin_dsn(node, secrets)) as conn:
            names = sql_steps.pending_restart(conn)
    except (ExaPGError, psycopg.Error):
        return ""
    return f" ({', '.join(names)} apply at the next 'exapg restart')" if names else ""


def change_password(stack: Stack, node: Node, secrets: Secrets, old_password: str) -> list[str]:
    """POSTGRES_PASSWORD changed since the last up: set it on the node with the old one
    (a node that already takes the new one, after an interrupted up, is left alone)."""
    dsn = stack.admin_dsn(node, secrets)
    try:
        connect(dsn).close()
        return []
    except ExaPGError:
        pass
    user = stack.settings.postgres_user
    with connect(replace(dsn, password=old_password)) as conn:
        sql_steps.set_password(conn, user, secrets.postgres_password)
    return [f"{node.name}: password of {user} changed (POSTGRES_PASSWORD)"]


def receiver_status(stack: Stack, node: Node, secrets: Secrets) -> str:
    """The standby's WAL receiver: 'streaming' when it follows its primary."""
    try:
        with connect(stack.admin_dsn(node, secrets), statement_timeout_ms=5000) as conn:
            return sql_steps.receiver_status(conn)
    except (ExaPGError, psycopg.Error):
        return "unknown"


def wait_streaming(stack: Stack, node: Node, secrets: Secrets) -> None:
    timeout = stack.settings.start_timeout
    if not wait_until(lambda: receiver_status(stack, node, secrets) == "streaming", timeout):
        status = receiver_status(stack, node, secrets)
        raise OperationTimeoutError(
            f"{node.name} runs but does not stream from {node.primary} (WAL receiver: {status}) "
            f"after {timeout:.0f}s: see {stack.log_file(node.name)}"
        )


def prepare_coordinator(stack: Stack, node: Node, topology: Topology, secrets: Secrets) -> list[str]:
    """Idempotent SQL on the coordinator: database, extensions, replication role and slots."""
    actions = prepare_database(stack, node, topology, secrets)
    with connect(stack.admin_dsn(node, secrets)) as conn:
        sql_steps.ensure_replication_role(conn, REPLICATION_USER, secrets.replication_password)
        for standby in topology.standbys:
            sql_steps.ensure_slot(conn, standby.slot or standby.name)
    return actions + archiving.record_backups(stack, topology, secrets)


def prepare_database(stack: Stack, node: Node, topology: Topology, secrets: Secrets) -> list[str]:
    """The stack's database on a node, with the extensions its mode uses."""
    db = stack.settings.postgres_db
    with connect(stack.admin_dsn(node, secrets)) as conn:
        created = sql_steps.ensure_database(conn, db)
    wanted = ["citus", *citus.OPTIONAL_EXTENSIONS, PG_STAT_STATEMENTS] if topology.mode == Mode.CLUSTER \
        else [PG_STAT_STATEMENTS]
    with connect(stack.dsn(node, secrets=secrets)) as conn:
        extensions = sql_steps.ensure_extensions(conn, wanted)
    if created:
        return [f"{node.name}: database {db} created"]
    # In an existing database, a new extension means a change of mode: say so.
    return [f"{node.name}: extension {name} created in {db}" for name in extensions]


def stop(stack: Stack, node: Node) -> bool:
    """Stop a node (fast: committed work is flushed) and give back its huge pages."""
    stopped = stack.server(node).stop(timeout=stack.settings.start_timeout)
    release_huge_pages(stack, node)
    return stopped


def set_aside(node: Node) -> str:
    """Move a retired node's data directory aside (never deleted here); returns where to."""
    aside = node.datadir.with_name(f".removed-{node.name}-{int(time.time())}")
    if node.datadir.exists():
        os.replace(node.datadir, aside)
    return str(aside)


# -- huge pages -------------------------------------------------------------------------------
def huge_page_ledger(stack: Stack) -> hugepages.Ledger:
    return hugepages.Ledger(stack.root / "hugepages.json", stack.user)


def reserve_huge_pages(stack: Stack, node: Node, server: PostgresServer) -> None:
    """As root, grow the kernel's huge page pool by what the node is about to map."""
    wanted = stack.settings.huge_pages
    reserving = hugepages.can_reserve()
    if wanted == "off" or (wanted == "try" and not reserving):
        return  # nothing to reserve and nothing to check: PostgreSQL takes free pages if any
    needed = hugepages.pages_needed(stack.binaries, server.datadir, stack.user)
    if needed is None:
        return
    if reserving:
        with hugepages.pool_lock():
            added = hugepages.reserve(needed)
            if added:
                huge_page_ledger(stack).add(node.name, added)
    if wanted == "on":
        pool = hugepages.read_pool()
        free = pool.available if pool else 0
        if free < needed:
            raise ConfigurationError(
                f"{node.name}: EXAPG_HUGE_PAGES=on needs {needed} free huge pages, the kernel has {free}: "
                "reserve them (sysctl vm.nr_hugepages), run 'exapg up' as root, or set EXAPG_HUGE_PAGES=try"
            )


def release_huge_pages(stack: Stack, node: Node) -> None:
    """Give back the pages ExaPG reserved for a node once it no longer runs."""
    ledger = huge_page_ledger(stack)
    if (node.name not in ledger.read() or not hugepages.can_reserve()
            or stack.server(node).pidfile() is not None):
        return
    with hugepages.pool_lock():
        hugepages.release(ledger.take(node.name))
