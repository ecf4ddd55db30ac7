"""pgBouncer in front of the coordinator: transaction pooling, SCRAM end to end."""

from __future__ import annotations

from exapg.cluster.topology import Node
from exapg.credentials import Secrets
from exapg.postgres.conn import connect
from exapg.runtime import pgbouncer as pgbouncer_conf
from exapg.runtime.base import Program
from exapg.stack import Stack

NAME = "pgbouncer"
binary = pgbouncer_conf.binary


def program(stack: Stack) -> Program:
    return pgbouncer_conf.program(stack.conf_dir / "pgbouncer.ini", stack.settings.pgbouncer_port)


def write_files(stack: Stack, coordinator: Node, secrets: Secrets) -> None:
    """The ini and the auth file, holding the superuser's SCRAM verifier read from the
    coordinator (pgBouncer never sees a plain password)."""
    user = stack.settings.postgres_user
    userlist = stack.conf_dir / "userlist.txt"
    with connect(stack.dsn(coordinator, secrets=secrets)) as conn:
        secret = pgbouncer_conf.scram_secret(conn, user)
    stack.write_if_changed(userlist, pgbouncer_conf.render_userlist(user, secret))
    stack.write_if_changed(stack.conf_dir / "pgbouncer.ini", pgbouncer_conf.render_ini(
        stack.settings, coordinator_port=coordinator.port, auth_file=userlist, socket_dir=stack.run_dir,
    ))
