"""pgBouncer in front of the coordinator: configuration and the supervised program."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from exapg.errors import MissingDependencyError
from exapg.runtime.base import Program
from exapg.settings import Settings
from exapg.status import Role


def binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if not found:
        raise MissingDependencyError("pgbouncer not found: install it with 'apt-get install pgbouncer'")
    return found


def render_ini(
    settings: Settings, *, coordinator_port: int, auth_file: Path, socket_dir: Path
) -> str:
    """Transaction pooling with the limits of the Docker specification; SCRAM for clients and for the server."""
    db = settings.postgres_db
    return "\n".join(
        [
            "; Written by ExaPG on every 'exapg up'.",
            "[databases]",
            f"{db} = host=127.0.0.1 port={coordinator_port} dbname={db}",
            "",
            "[pgbouncer]",
            f"listen_addr = {settings.listen_address}",
            f"listen_port = {settings.pgbouncer_port}",
            f"unix_socket_dir = {socket_dir}",
            "auth_type = scram-sha-256",
            f"auth_file = {auth_file}",
            f"admin_users = {settings.postgres_user}",
            f"stats_users = {settings.postgres_user}",
            f"pool_mode = {settings.pool_mode}",
            f"max_client_conn = {settings.max_client_conn}",
            f"default_pool_size = {settings.default_pool_size}",
            "server_check_query = select 1",
            "server_connect_timeout = 5",
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
    return f'"{role}" "{secret}"\n'


def admin(conn: psycopg.Connection, command: str) -> None:
    """One command on pgBouncer's admin console (simple query protocol only), e.g.
    PAUSE db, RELOAD, RECONNECT db, RESUME db."""
    psycopg.ClientCursor(conn).execute(command)


def program(ini: Path, port: int) -> Program:
    return Program(
        name="pgbouncer", role=Role.POOLER, command=[binary(), str(ini)], port=port,
        stop_signal="INT",
    )
