"""How the local runtime runs the exporter under its supervisor (ha mode)."""

from __future__ import annotations

import sys
from pathlib import Path

from exapg.runtime.base import Program
from exapg.settings import Settings
from exapg.status import Role

NAME = "replication_exporter"
WILDCARDS = ("", "*", "0.0.0.0", "::")  # noqa: S104 - recognised, not bound


def exporter_program(
    *, settings: Settings, password_file: Path, primary_port: int, standby_ports: list[int],
    log_dir: Path,
) -> Program:
    """The exporter pointed at the local pair; the password travels as a file, never in
    the supervisor's configuration."""
    listen = _http_address(settings.listen_address)
    probe = "127.0.0.1" if listen in WILDCARDS else listen
    environment = {
        "PRIMARY_HOST": "127.0.0.1",
        "PRIMARY_PORT": str(primary_port),
        "STANDBY_HOSTS": ",".join(f"127.0.0.1:{port}" for port in standby_ports),
        "POSTGRES_DB": settings.postgres_db,
        "POSTGRES_USER": settings.postgres_user,
        "POSTGRES_PASSWORD_FILE": str(password_file),
        "EXPORTER_PORT": str(settings.exporter_port),
        "EXPORTER_LISTEN_ADDRESS": "0.0.0.0" if listen == "*" else listen,  # noqa: S104
        "POSTGRES_SSLMODE": "disable",  # loopback: TLS would only cost a handshake
        "PYTHONUNBUFFERED": "1",
    }
    return Program(
        name=NAME,
        role=Role.EXPORTER,
        command=[sys.executable, "-m", "exapg.exporter"],
        port=settings.exporter_port,
        health_url=f"http://{_url_host(probe)}:{settings.exporter_port}/health",
        environment=environment,
        directory=log_dir,
    )


def _http_address(listen_addresses: str) -> str:
    """PostgreSQL's listen_addresses may list several; an HTTP server binds one."""
    first = listen_addresses.split(",")[0].strip()
    return "127.0.0.1" if first == "localhost" else first


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
