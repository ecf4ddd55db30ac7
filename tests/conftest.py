"""Shared fixtures: real ExaPG stacks on free ports in temporary state directories.

`ha_stack` is one running coordinator + hot standby + pgBouncer for the whole session
(tests must leave it running and healthy); `make_stack` builds stacks a test may stop,
kill or promote, torn down (with their data) at the end of the test.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from exapg.cluster.topology import Mode
from exapg.postgres.conn import Dsn
from exapg.postgres.ctl import PostgresServer
from exapg.runtime.local import LocalRuntime
from exapg.settings import Settings

# Fixtures every directory shares, registered once (a fixture imported into two conftests
# would be two session fixtures: two API servers, two Playwright instances).
pytest_plugins = ["tests.api.fixtures", "tests.e2e.browser"]

EXAPG = [sys.executable, "-m", "exapg.cli.main"]
PORT_VARIABLES = (
    "COORDINATOR_PORT", "STANDBY_PORT", "PGBOUNCER_PORT", "EXPORTER_PORT", "PROMETHEUS_PORT",
    "POSTGRES_EXPORTER_PORT", "MGMT_BACKEND_PORT", "MGMT_FRONTEND_PORT", "GRAFANA_PORT",
    "WORKER1_PORT", "WORKER2_PORT", "WORKER3_PORT",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def distinct_free_ports(count: int) -> list[int]:
    """`count` free ports, all different (the kernel may hand a just-released port out again)."""
    found: list[int] = []
    while len(found) < count:
        port = free_port()
        if port not in found:
            found.append(port)
    return found


def stack_environment(state_dir: Path, **overrides: str) -> dict[str, str]:
    """Settings for an isolated stack: its own project name, state dir and free ports."""
    env = {
        "COMPOSE_PROJECT_NAME": f"t{uuid.uuid4().hex[:10]}",
        "EXAPG_STATE_DIR": str(state_dir),
        "EXAPG_MEMORY_LIMIT": "1GB",
        "EXAPG_ENV_FILE": "/nonexistent/.env",
        "EXAPG_START_TIMEOUT": "60",
    }
    ports = distinct_free_ports(len(PORT_VARIABLES))
    env.update({name: str(port) for name, port in zip(PORT_VARIABLES, ports, strict=True)})
    env.update(overrides)
    return env


def new_state_dir() -> Path:
    """Short paths: unix socket paths are limited to about 100 bytes. The folder goes when
    the process ends (the stack in it is down by then)."""
    path = Path(tempfile.mkdtemp(prefix="exapg-t-", dir="/tmp"))
    path.chmod(0o755)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path / "stack"


@dataclass
class Stack:
    env: dict[str, str]
    settings: Settings
    runtime: LocalRuntime
    mode: str = "ha"
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def password(self) -> str:
        return self.runtime.stack.secrets.postgres_password

    @property
    def password_file(self) -> Path:
        return self.runtime.stack.password_file

    @property
    def coordinator(self) -> Dsn:
        return self.runtime.stack.dsn("coordinator")

    @property
    def standby(self) -> Dsn:
        return self.runtime.stack.dsn("standby")

    @property
    def pgbouncer(self) -> Dsn:
        return self.runtime.stack.dsn(pooled=True)

    def server(self, node: str) -> PostgresServer:
        return self.runtime.stack.server(self.runtime.stack.topology.node(node))

    @property
    def coordinator_server(self) -> PostgresServer:
        return self.server("coordinator")

    @property
    def standby_server(self) -> PostgresServer:
        return self.server("standby")

    def cli(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
        """Run the real `exapg` command line against this stack."""
        return run_cli(*args, env={**self.env, **env}, timeout=timeout)

    def destroy(self) -> None:
        try:
            LocalRuntime(self.settings).down(volumes=True)
        finally:
            shutil.rmtree(self.settings.state_dir.parent, ignore_errors=True)


def cli_environment(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without ExaPG's own variables, then the stack's."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("EXAPG_", "POSTGRES_"))}, **env}


def run_cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full_env = {**cli_environment(env), "COLUMNS": "200"}
    return subprocess.run(
        [*EXAPG, *args], env=full_env, capture_output=True, text=True, timeout=timeout, check=False
    )


def build_stack(mode: str = "ha", start: bool = True, **overrides: str) -> Stack:
    env = stack_environment(new_state_dir(), **overrides)
    settings = Settings.load(environ=env)
    stack = Stack(env, settings, LocalRuntime(settings), mode)
    if start:
        try:
            stack.runtime.up(mode=Mode(mode))
        except BaseException:
            stack.destroy()
            raise
    return stack


@pytest.fixture(scope="session")
def ha_stack() -> Iterator[Stack]:
    stack = build_stack("ha")
    yield stack
    stack.destroy()


@pytest.fixture
def make_stack() -> Iterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def factory(mode: str = "ha", start: bool = True, **overrides: str) -> Stack:
        stack = build_stack(mode, start, **overrides)
        made.append(stack)
        return stack

    yield factory
    for stack in made:
        stack.destroy()
