"""The management backend as a program of the local runtime's supervisor."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from exapg.runtime.base import Program
from exapg.settings import Settings
from exapg.status import Role

NAME = "management_backend"


def api_program(
    *, settings: Settings, state_dir: Path, log_dir: Path, env: Mapping[str, str]
) -> Program:
    """uvicorn running `create_app` on MGMT_BACKEND_PORT, health-checked on /api/health.

    `env` is the environment the stack's settings came from; the backend rebuilds the
    same Settings from it (and finds the stack's secrets through EXAPG_STATE_DIR).
    """
    port = settings.mgmt_backend_port
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "exapg.api.app:create_app",
        "--host",
        _host(settings.listen_address),
        "--port",
        str(port),
        "--no-access-log",
        # Local mode serves browsers directly, with no proxy in front: a forwarded-for header
        # from any local process must not pick the address that logins are limited by.
        "--no-proxy-headers",
        "--timeout-graceful-shutdown",
        "10",
        "--log-level",
        "info",
    ]
    environment = {**env, "EXAPG_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"}
    return Program(
        name=NAME,
        role=Role.API,
        command=command,
        port=port,
        health_url=f"http://127.0.0.1:{port}/api/health",
        environment=environment,
        directory=log_dir,
        stop_signal="TERM",
    )


def _host(listen_address: str) -> str:
    """uvicorn wants an address; '*' (PostgreSQL's spelling of all interfaces) is 0.0.0.0."""
    return "0.0.0.0" if listen_address in ("*", "") else listen_address  # noqa: S104
