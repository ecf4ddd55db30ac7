"""pgBouncer in front of the primary: transaction pooling, SCRAM end to end."""

from __future__ import annotations

from exapg.cluster.topology import Node
from exapg.credentials import Secrets
from exapg.errors import MissingDependencyError
from exapg.postgres import pgbouncer as pgbouncer_conf
from exapg.postgres.conn import connect
from exapg.proc import find_program
from exapg.runtime.base import Program
from exapg.stack import Stack
from exapg.status import Role

NAME = "pgbouncer"


def binary() -> str:
    found = find_program("pgbouncer", "/usr/sbin/pgbouncer")
    if not found:
        raise MissingDependencyError("pgbouncer not found: install it with 'apt-get install pgbouncer'")
    return found


def program(stack: Stack, primary: Node) -> Program:
    """Stopped with SIGINT: pgBouncer's safe shutdown, which lets running queries finish.
    Its status names the node it sends clients to (in a split brain, the one they reach)."""
    return Program(
        name=NAME, role=Role.POOLER, command=[binary(), str(stack.conf_dir / "pgbouncer.ini")],
        port=stack.settings.pgbouncer_port, stop_signal="INT",
        detail=f"sends clients to {primary.name} (port {primary.port})",
    )


def write_files(stack: Stack, primary: Node, secrets: Secrets) -> None:
    """The ini and the auth file, holding the superuser's SCRAM verifier read from the
    primary (pgBouncer never sees a plain password)."""
    user = stack.settings.postgres_user
    userlist = stack.conf_dir / "userlist.txt"
    with connect(stack.dsn(primary, secrets=secrets)) as conn:
        secret = pgbouncer_conf.scram_secret(conn, user)
    stack.write_if_changed(userlist, pgbouncer_conf.render_userlist(user, secret))
    stack.write_if_changed(stack.conf_dir / "pgbouncer.ini", pgbouncer_conf.render_ini(
        stack.settings, coordinator_port=primary.port, auth_file=userlist, socket_dir=stack.run_dir,
    ))
