"""The management API started as a real uvicorn process against the session's `ha_stack`.

Loaded once for the whole suite from `tests/conftest.py` (`pytest_plugins`), so every
directory shares one server.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import cli_environment, free_port


@dataclass
class ApiServer:
    url: str
    stack: object  # tests.conftest.Stack
    admin_password: str
    log: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def login(self, username: str, password: str) -> httpx.Response:
        with self.client() as client:
            return client.post("/api/auth/login", json={"username": username, "password": password})

    def token(self, username: str, password: str) -> str:
        answer = self.login(username, password)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def admin_session(self) -> str:
        """The admin's token, logged in again when a test ended the session (a reset of the
        admin's password ends every session of the admin)."""
        token = getattr(self, "_admin_token", None)
        if token is not None:
            with self.client(token) as client:
                if client.get("/api/auth/me").status_code == 200:
                    return token
        self._admin_token = self.token("admin", self.admin_password)
        return self._admin_token


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    full_env = {**cli_environment(env), "MGMT_BACKEND_PORT": str(port)}
    command = [sys.executable, "-m", "uvicorn", "--factory", "exapg.api.app:create_app",
               "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=full_env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"management API exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"management API not healthy after {timeout}s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def api_server(ha_stack, tmp_path_factory) -> Iterator[ApiServer]:
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "api.log"
    # The stack runs its own Prometheus; this server must show the in-process sampler.
    env = {**ha_stack.env, "EXAPG_SAMPLE_INTERVAL": "1", "EXAPG_PROMETHEUS_URL": "http://127.0.0.1:9"}
    process = start_api(env, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield ApiServer(url, ha_stack, ha_stack.runtime.stack.secrets.admin_password, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def own_api(make_stack, tmp_path) -> Iterator[ApiServer]:
    """An API on a stack of its own, for a test that stops that stack's nodes."""
    stack = make_stack("ha")
    port, log = free_port(), tmp_path / "api.log"
    env = {**stack.env, "EXAPG_SAMPLE_INTERVAL": "1", "EXAPG_PROMETHEUS_URL": "http://127.0.0.1:9"}
    process = start_api(env, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield ApiServer(url, stack, stack.runtime.stack.secrets.admin_password, log)
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture
def split_api(own_api: ApiServer) -> ApiServer:
    """An API on a stack of its own whose standby was promoted by hand (`pg_ctl promote`)
    while the coordinator runs on: two writable primaries. The stack goes with the test."""
    own_api.stack.standby_server.promote()
    return own_api


@pytest.fixture
def admin_token(api_server: ApiServer) -> str:
    return api_server.admin_session()


@pytest.fixture
def admin(api_server: ApiServer, admin_token: str) -> Iterator[httpx.Client]:
    with api_server.client(admin_token) as client:
        yield client


@dataclass
class Account:
    username: str
    password: str
    token: str


def unique_name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


@pytest.fixture
def make_user(api_server: ApiServer, admin: httpx.Client) -> Iterator[Callable[[str], Account]]:
    """Users created through the API (and deleted again after the test)."""
    made: list[str] = []

    def factory(role: str) -> Account:
        name, password = unique_name(role[:4]), secrets.token_urlsafe(16)
        answer = admin.post("/api/users", json={"username": name, "password": password, "role": role})
        assert answer.status_code == 201, answer.text
        made.append(name)
        return Account(name, password, api_server.token(name, password))

    yield factory
    for name in made:
        admin.delete(f"/api/users/{name}")
