"""The management backend (uvicorn running the API's factory), health-checked on /api/health."""

from __future__ import annotations

import sys

from exapg.addresses import LOOPBACK, bind_host
from exapg.runtime.base import Program
from exapg.stack import Stack
from exapg.status import Role

NAME = "management_backend"
FACTORY = "exapg.api.app:create_app"  # named, not imported: the runtime does not load the API


def program(stack: Stack) -> Program:
    """The backend rebuilds the stack's Settings from the same environment, and finds the
    stack's secrets through EXAPG_STATE_DIR."""
    settings = stack.settings
    port = settings.mgmt_backend_port
    command = [
        sys.executable, "-m", "uvicorn", "--factory", FACTORY,
        "--host", bind_host(settings.listen_address), "--port", str(port),
        "--no-access-log",
        # Local mode serves browsers directly, with no proxy in front: a forwarded-for header
        # from any local process must not pick the address that logins are limited by.
        "--no-proxy-headers",
        "--timeout-graceful-shutdown", "10",
        "--log-level", "info",
    ]
    environment = {**settings.to_environment(), "EXAPG_STATE_DIR": str(stack.root), "PYTHONUNBUFFERED": "1"}
    return Program(
        name=NAME,
        role=Role.API,
        command=command,
        port=port,
        health_url=f"http://{LOOPBACK}:{port}/api/health",
        environment=environment,
        directory=stack.log_dir,
        stop_signal="TERM",
    )
