"""Checks `up` makes before it writes, starts or changes anything, and the directories it makes."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from exapg import config_check
from exapg.backup import pgbackrest
from exapg.cluster.topology import Mode
from exapg.config_check import port_free
from exapg.errors import ConfigurationError, MissingDependencyError
from exapg.postgres.ctl import read_pidfile
from exapg.proc import ServiceUser
from exapg.runtime import processes
from exapg.runtime.programs import pgbouncer
from exapg.stack import Stack
from exapg.state import StackState


def validate(stack: Stack) -> None:
    """What `exapg config validate` checks, with the ports this stack holds counted as free."""
    config_check.require_valid(stack.settings, ours=own_ports(stack), backend="local")


def own_ports(stack: Stack) -> set[int]:
    """TCP ports this stack's own processes listen on: its postmasters and its supervised
    programs (under a live supervisor or left by a dead one)."""
    pids = set(processes.marked(stack.marker))
    if stack.data_dir.is_dir():
        for datadir in stack.data_dir.iterdir():
            found = read_pidfile(datadir)
            if found is not None:
                pids.add(found.pid)
    return set(processes.listening_ports(pids))


def check_dependencies(stack: Stack, desired: StackState) -> None:
    """Binaries, Citus, the service user, and a Python it can run."""
    stack.binaries.major_version  # noqa: B018 - resolves and checks the binaries
    pgbouncer.binary()
    if pgbackrest.binary() is None:
        raise MissingDependencyError(f"pgBackRest (WAL archiving and backups) is not installed: "
                                     f"{pgbackrest.INSTALL_HINT}")
    if desired.mode == Mode.CLUSTER and not stack.binaries.has_extension("citus"):
        raise MissingDependencyError(
            "cluster mode needs the citus extension for PostgreSQL "
            f"{stack.binaries.major_version}, which is not installed: install Citus "
            "(package postgresql-15-citus-12.1 from Citus's repository, or build it), "
            "or use --mode standalone|ha"
        )
    stack.user  # noqa: B018
    check_python_reachable(stack.user)


def check_state_dir(stack: Stack) -> None:
    existing = next(p for p in [stack.root, *stack.root.parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"state directory {stack.root} is not writable ({existing} is not): "
            "set EXAPG_STATE_DIR to a writable directory"
        )
    blocked = untraversable(stack.root, stack.user)
    if blocked is not None:
        raise ConfigurationError(
            f"the service user {stack.user.name!r} cannot reach {stack.root} ({blocked} denies it): "
            "set EXAPG_STATE_DIR to a directory it can reach, such as /var/lib/exapg"
        )


def prepare_dirs(stack: Stack) -> None:
    try:
        for path, mode in [(stack.root, 0o700), (stack.data_dir, 0o700), (stack.conf_dir, 0o700),
                           (stack.run_dir, 0o700), (stack.log_dir, 0o750)]:
            stack.user.make_dir(path, mode)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the state directory {stack.root}: {exc.strerror}; "
            "set EXAPG_STATE_DIR to a writable directory"
        ) from None


def check_port(stack: Stack, port: int, service: str) -> None:
    if not port_free(stack.settings.listen_address, port):
        raise ConfigurationError(
            f"port {port} for {service} is already in use by another process: free it or "
            f"choose another port in the settings (exapg config show)"
        )


def check_python_reachable(user: ServiceUser) -> None:
    """Supervised Python programs run as the service user: it must reach this Python."""
    import exapg

    for path in (Path(sys.executable).resolve(), Path(sys.base_prefix), Path(exapg.__file__).parent):
        blocked = untraversable(path / "x", user)
        if blocked is not None:
            raise ConfigurationError(
                f"the service user {user.name!r} cannot run ExaPG's Python ({blocked} "
                f"denies it, on the way to {path}): install ExaPG into a virtualenv made by a "
                "Python it can reach (make venv PYTHON=/usr/bin/python3) in a directory it can enter"
            )


def untraversable(path: Path, user: ServiceUser) -> Path | None:
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

