"""The local runtime: the whole stack on this machine, no Docker.

PostgreSQL nodes are driven with pg_ctl and tracked through their pidfiles; every other
long-running daemon runs under the stack's own supervisord. This module keeps only the
verbs and the order of their steps; the steps live in preflight, nodes, scaling,
supervised and service_health, each taking the Stack (exapg/stack.py) they act on.

Every step of `up` is idempotent, so an interrupted `up` is finished by the next one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

from exapg import credentials
from exapg import state as state_file
from exapg.cluster.topology import Mode
from exapg.errors import ExaPGError, InvalidParameterError
from exapg.stack import Progress, Stack, quiet

if TYPE_CHECKING:
    from exapg.backup.pgbackrest import Target
    from exapg.postgres.conn import Dsn
    from exapg.runtime.backup import Restored
    from exapg.settings import Settings
    from exapg.state import StackState
    from exapg.status import ServiceStatus


class LocalRuntime:
    def __init__(self, settings: Settings, progress: Progress = quiet) -> None:
        self.settings = settings
        self.stack = Stack(settings, progress)

    # -- up ---------------------------------------------------------------------------------
    def up(self, mode: Mode | None = None, workers: int | None = None, standby: bool | None = None) -> list[str]:
        """Bring the stack to its desired state; returns what was done (empty: nothing to do).

        Every settings problem is reported before anything is written, started or changed."""
        from exapg.runtime import nodes, preflight, scaling, supervised

        stack = self.stack
        preflight.validate(stack)
        preflight.check_state_dir(stack)
        previous = stack.state()
        desired = scaling.desired_state(stack.name, previous, mode, workers, standby)
        topology = stack.topology_of(desired)
        preflight.check_dependencies(stack, desired)
        scaling.check_mode_change(stack, previous, desired)
        preflight.prepare_dirs(stack)
        with state_file.locked(stack.lock_path):
            leaving = scaling.retiring(stack.topology_of(previous) if previous else None, topology)
            # Until the nodes that go are gone (and Citus with them), the state keeps them: a failed
            # drain or an interrupted up leaves them known to status, stop and the next attempt.
            later = bool(leaving) or scaling.leaves_cluster(previous, desired)
            if not later:
                state_file.save(stack.state_path, desired, stack.user)
            secrets, old_password = self._store_secrets()
            actions = scaling.leave_cluster(stack, previous, desired, secrets, old_password)
            actions += nodes.ensure_node(stack, topology.coordinator, topology, secrets, old_password)
            actions += nodes.prepare_coordinator(stack, topology.coordinator, topology, secrets)
            if leaving:
                actions += scaling.retire(stack, leaving, topology, secrets)
            if later:
                state_file.save(stack.state_path, desired, stack.user)
            for node in topology.nodes[1:]:
                actions += nodes.ensure_node(stack, node, topology, secrets, old_password)
            if old_password is not None:  # every node takes the new password now
                credentials.save(stack.secrets_path, secrets, stack.user)
            if topology.mode == Mode.CLUSTER:
                actions += scaling.register_workers(stack, topology, secrets)
            actions += supervised.ensure(stack, topology, secrets, restart=old_password is not None)
        return actions

    def _store_secrets(self) -> tuple[credentials.Secrets, str | None]:
        """The secrets this up applies, written where nodes and programs read them; with the
        superuser's old password while a changed one is not yet set on the nodes."""
        stack = self.stack
        stack.forget_secrets()
        secrets, old_password = credentials.pending(stack.secrets_path, stack.settings)
        if old_password is None:
            credentials.save(stack.secrets_path, secrets, stack.user)
        stack.user.write_file(stack.passfile, credentials.pgpass(secrets, stack.settings.postgres_user))
        stack.user.write_file(stack.password_file, secrets.postgres_password, 0o600)
        return secrets, old_password

    # -- stop / down / restart -----------------------------------------------------------------
    def stop(self) -> list[str]:
        """Stop every service gracefully, primaries before standbys; data and configuration are kept."""
        from exapg.runtime import nodes, supervised

        stack = self.stack
        topology = stack.topology
        with state_file.locked(stack.lock_path):
            actions = supervised.shutdown(stack)
            primaries = [n for n in topology.nodes if not n.is_standby]
            for node in [*primaries, *topology.standbys]:
                stack.progress(f"{node.name}: stopping")
                if nodes.stop(stack, node):
                    actions.append(f"{node.name}: stopped")
        return actions

    def down(self, volumes: bool = False) -> list[str]:
        """Stop, remove generated files; with volumes=True also every data directory."""
        stack = self.stack
        if not stack.root.exists():
            return []
        actions = self.stop() if stack.state() is not None else []
        if volumes:
            shutil.rmtree(stack.root)
            return [*actions, f"removed {stack.root} (data, secrets, logs)"]
        for path in (stack.conf_dir, stack.run_dir):
            shutil.rmtree(path, ignore_errors=True)
        return [*actions, f"generated configuration removed; data kept in {stack.data_dir}"]

    def restart(self) -> list[str]:
        """Stop, then start again in the stack's mode; bad settings are refused before stopping."""
        from exapg.runtime import preflight

        preflight.validate(self.stack)
        return self.stop() + self.up()

    # -- backups ------------------------------------------------------------------------------------
    def restore(self, target: Target, backup_set: str | None = None) -> tuple[list[str], list[Restored]]:
        """Stop, restore every primary to `target` (runtime/backup.py), start everything again:
        `up` clones the standby anew from the restored coordinator."""
        from exapg.runtime import backup

        backup.check_restore(self.stack, target, backup_set)
        actions = backup.archive_last_wal(self.stack) + self.stop()
        restored = backup.restore_nodes(self.stack, target, backup_set)
        return actions + self.up(), restored

    # -- Citus -------------------------------------------------------------------------------------
    def scale(self, workers: int, rebalance: bool = True) -> list[str]:
        current = self.stack.require_cluster("scale")
        if workers < 1:
            raise InvalidParameterError("a cluster needs at least one worker")
        actions = self.up(mode=Mode.CLUSTER, workers=workers)
        if rebalance and workers > current.workers:
            actions += self.rebalance()
        return actions

    def rebalance(self, wait: bool = True) -> list[str]:
        from exapg.runtime import scaling

        return scaling.rebalance(self.stack, wait)

    def require_cluster(self, command: str) -> StackState:
        return self.stack.require_cluster(command)

    # -- the primary's role (ha) -----------------------------------------------------------------
    def switchover(self) -> list[str]:
        from exapg.runtime import roles

        return roles.switchover(self.stack, self.up)

    def failover(self, force: bool = False) -> list[str]:
        from exapg.runtime import roles

        return roles.failover(self.stack, self.up, force=force)

    def rejoin(self, node: str | None = None, rebuild: bool = False) -> list[str]:
        from exapg.runtime import roles

        return roles.rejoin(self.stack, self.up, node, rebuild)

    # -- looking at it -------------------------------------------------------------------------------
    def status(self) -> list[ServiceStatus]:
        from exapg.runtime import service_health

        return service_health.statuses(self.stack)

    def logs(self, service: str | None, follow: bool, since: float | None, timestamps: bool) -> Iterator[str]:
        from exapg.runtime import logs as logfiles

        files = logfiles.service_logs(self.stack.log_dir)
        if service is not None:
            if service not in files:
                names = ", ".join(sorted(files)) or "none yet"
                raise ExaPGError(f"no logs for service {service!r} (services with logs: {names})")
            files = {service: files[service]}
        return logfiles.read(files, follow=follow, since=since, timestamps=timestamps)

    # -- reaching it -------------------------------------------------------------------------------
    def coordinator_dsn(self) -> Dsn:
        return self.stack.dsn()

    def psql_command(self, service: str, command: str | None, interactive: bool) -> tuple[list[str], dict[str, str]]:
        """psql on a node, or on pgBouncer, authenticated through the stack's passfile."""
        pooled = service == "pgbouncer"
        dsn = self.stack.dsn(None if pooled else service, pooled=pooled)
        argv = [str(self.stack.binaries("psql")), "-h", dsn.host, "-p", str(dsn.port), "-U", dsn.user,
                "-d", dsn.dbname, "-v", "ON_ERROR_STOP=1"]
        if command is not None:
            argv += ["-c", command]
        return argv, {**os.environ, "PGPASSFILE": str(self.stack.passfile), "PGCONNECT_TIMEOUT": "5"}

    def credentials(self) -> dict[str, str | None]:
        stack = self.stack
        s, secrets = stack.settings, stack.secrets
        return {
            "database": s.postgres_db,
            "user": s.postgres_user,
            "password": secrets.postgres_password,
            "coordinator_url": stack.dsn().url(hide_password=False),
            "pgbouncer_url": stack.dsn(pooled=True).url(hide_password=False),
            "passfile": str(stack.passfile),
            "management_url": f"http://127.0.0.1:{s.mgmt_backend_port}/",
            "management_user": "admin",
            "management_password": secrets.admin_password,
        }
