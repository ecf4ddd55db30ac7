"""pgBouncer's configuration: the local runtime's ini, the Docker image's template, the auth file.

One `ini()` renders both, so the two runtimes pool the same way (tests/unit/test_conf_files.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from exapg.errors import MissingDependencyError
from exapg.settings import Settings

if TYPE_CHECKING:
    import psycopg


def render_ini(
    settings: Settings, *, coordinator_port: int, auth_file: Path, socket_dir: Path
) -> str:
    """The local runtime's pgBouncer: the coordinator on this machine, the settings' limits."""
    return ini(
        dbname=settings.postgres_db, host="127.0.0.1", port=coordinator_port,
        listen_addr=settings.listen_address, listen_port=settings.pgbouncer_port,
        socket_dir=socket_dir, auth_file=auth_file, user=settings.postgres_user,
        pool_mode=settings.pool_mode, max_client_conn=settings.max_client_conn,
        default_pool_size=settings.default_pool_size,
    )


# The exapg/pgbouncer image's template (config/pgbouncer/pgbouncer.ini.template): its
# entrypoint puts the specification's variables in place of @NAME@ at every start.
IMAGE_RUNTIME_DIR = "/tmp/pgbouncer"  # noqa: S108 - a tmpfs of its own in the container
IMAGE_NOTE = (
    "pgBouncer for ExaPG in Docker. The exapg/pgbouncer entrypoint fills the @VARIABLES@\n"
    "from the specification's DATABASES_* / POOL_MODE / MAX_CLIENT_CONN / DEFAULT_POOL_SIZE\n"
    f"environment and writes the result to {IMAGE_RUNTIME_DIR}/pgbouncer.ini."
)


def image_template(note: str = IMAGE_NOTE) -> str:
    """The same ini as the local runtime's, with the container's addresses and paths."""
    return ini(
        dbname="@DATABASES_DBNAME@", host="@DATABASES_HOST@", port="@DATABASES_PORT@",
        listen_addr="0.0.0.0", listen_port=6432, socket_dir=IMAGE_RUNTIME_DIR,  # noqa: S104 - the container's
        auth_file=f"{IMAGE_RUNTIME_DIR}/userlist.txt", user="@DATABASES_USER@",
        pool_mode="@POOL_MODE@", max_client_conn="@MAX_CLIENT_CONN@",
        default_pool_size="@DEFAULT_POOL_SIZE@", note=note,
    )


def ini(
    *, dbname: str, host: str, port: int | str, listen_addr: str, listen_port: int | str,
    socket_dir: Path | str, auth_file: Path | str, user: str, pool_mode: str,
    max_client_conn: int | str, default_pool_size: int | str,
    note: str = "Written by ExaPG on every 'exapg up'.",
) -> str:
    """Transaction pooling with the limits of the Docker specification; SCRAM for clients and for the server."""
    return "\n".join(
        [
            *(f"; {line}".rstrip() for line in note.splitlines()),
            "[databases]",
            f"{dbname} = host={host} port={port} dbname={dbname}",
            "",
            "[pgbouncer]",
            f"listen_addr = {listen_addr}",
            f"listen_port = {listen_port}",
            f"unix_socket_dir = {socket_dir}",
            "auth_type = scram-sha-256",
            f"auth_file = {auth_file}",
            f"admin_users = {user}",
            f"stats_users = {user}",
            f"pool_mode = {pool_mode}",
            f"max_client_conn = {max_client_conn}",
            f"default_pool_size = {default_pool_size}",
            "server_check_query = select 1",
            "server_connect_timeout = 5",
            # after a failed login (a primary just died) retry in 1 s, not pgBouncer's 15 s:
            # once a failover repoints pgBouncer its clients get the new primary at once
            "server_login_retry = 1",
            "query_wait_timeout = 60",
            "ignore_startup_parameters = extra_float_digits,options",
            "log_connections = 0",
            "log_disconnections = 0",
            "",
        ]
    )


def scram_secret(conn: psycopg.Connection, role: str) -> str:
    """The role's stored SCRAM verifier: pgBouncer authenticates with it, no plain password."""
    row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    if not row or not row[0] or not str(row[0]).startswith("SCRAM-SHA-256$"):
        raise MissingDependencyError(f"role {role!r} has no SCRAM password to give pgBouncer")
    return str(row[0])


def render_userlist(role: str, secret: str) -> str:
    """pgBouncer's auth_file line; a double quote inside a field is doubled (the exapg/pgbouncer
    entrypoint writes the same line from DATABASES_USER and DATABASES_PASSWORD)."""
    return '"{}" "{}"\n'.format(role.replace('"', '""'), secret.replace('"', '""'))


def admin(conn: psycopg.Connection, command: str) -> None:
    """One command on pgBouncer's admin console (simple query protocol only), e.g.
    PAUSE db, RELOAD, RECONNECT db, RESUME db."""
    import psycopg

    psycopg.ClientCursor(conn).execute(command)
