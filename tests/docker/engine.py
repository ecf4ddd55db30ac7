"""Compose projects on the real Docker engine: started with the specification's commands
(`docker-compose -f ... up -d`), on free host ports and a subnet of their own, and always
removed with their volumes, even when a test fails.

Third-party images that cannot be pulled here are replaced by the Debian-package
builds `exapg images build` makes (PROMETHEUS_IMAGE, POSTGRES_EXPORTER_IMAGE).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import distinct_free_ports

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
DOCKER_DOCS = DOCKER_DIR.parent / "docs" / "docker.md"
OURS = ("exapg/postgres", "exapg/pgbouncer", "exapg/replication-exporter", "exapg/mgmt-backend",
        "exapg/mgmt-frontend")
STAND_INS = {"PROMETHEUS_IMAGE": ("prom/prometheus:v2.53.2", "exapg/prometheus:debian"),
             "POSTGRES_EXPORTER_IMAGE": ("prometheuscommunity/postgres-exporter:v0.11.1",
                                         "exapg/postgres-exporter:debian")}
PORT_VARIABLES = ("COORDINATOR_PORT", "WORKER1_PORT", "WORKER2_PORT", "STANDBY_PORT", "PGBOUNCER_PORT",
                  "PROMETHEUS_PORT", "GRAFANA_PORT", "POSTGRES_EXPORTER_PORT", "EXPORTER_PORT",
                  "MGMT_BACKEND_PORT", "MGMT_FRONTEND_PORT")


def engine_or_skip() -> None:
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("no docker command (make test installs Debian's docker.io as root)")
    result = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                            timeout=30, check=False)
    if result.returncode != 0:
        pytest.skip(f"no Docker engine answers ({result.stderr.strip().splitlines()[-1:]}); "
                    "make test starts one as root")
    missing = [name for name in OURS if not image_present(f"{name}:latest")]
    if missing:
        pytest.fail(f"images missing: {', '.join(missing)}: run make images (exapg images build)")


def image_present(name: str) -> bool:
    return docker("image", "inspect", name, check=False).returncode == 0


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result


def image_for(variable: str) -> str:
    official, stand_in = STAND_INS[variable]
    return official if image_present(official) else stand_in


def citus_in_image() -> bool:
    result = docker("run", "--rm", "--entrypoint", "cat", "exapg/postgres:latest", "/usr/share/exapg/citus",
                    check=False)
    return result.returncode == 0 and result.stdout.strip() not in ("", "none")


HANDED_OUT: set[str] = set()  # prefixes of this process's projects whose networks may not exist yet


def free_prefix() -> str:
    """A 172.x /16 no Docker network uses yet (the specification's fixed addresses live in it), nor a
    project of this process still holds (two side by side, before the first one's `up`)."""
    used = set(HANDED_OUT)
    for net in docker("network", "ls", "-q").stdout.split():
        info = json.loads(docker("network", "inspect", net).stdout)[0]
        for conf in (info.get("IPAM") or {}).get("Config") or []:
            used.add(".".join(conf.get("Subnet", "").split(".")[:2]))
    for second in range(21, 32):
        if f"172.{second}" not in used:
            return f"172.{second}"
    raise AssertionError("no free 172.21-31 subnet for a test project")


@dataclass
class Project:
    """One compose project: its files, environment and published ports."""

    files: list[str]
    env: dict[str, str]
    name: str
    ports: dict[str, int] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 300, check: bool = True,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        argv = ["docker-compose", "--project-name", self.name]
        for name in self.files:
            argv += ["-f", name]
        result = subprocess.run([*argv, *args], cwd=DOCKER_DIR, env={**self.env, **(env or {})},
                                capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result

    def container(self, service: str) -> str:
        found = self.compose("ps", "-q", service).stdout.split()
        assert found, f"no container for {service}"
        return found[0]

    def inspect(self, service: str) -> dict[str, Any]:
        return json.loads(docker("inspect", self.container(service)).stdout)[0]

    def wait_healthy(self, *services: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        pending = list(services)
        while pending:
            state = self.inspect(pending[0])["State"]
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy" or (health is None and state["Status"] == "running"):
                pending.pop(0)
                continue
            if time.monotonic() > deadline or state["Status"] in ("exited", "dead"):
                logs = self.compose("logs", "--no-color", "--tail", "60", pending[0], check=False).stdout
                raise AssertionError(f"{pending[0]} is {state['Status']}/{health}:\n{logs}")
            time.sleep(1)

    def conninfo(self, port_variable: str = "COORDINATOR_PORT", **extra: str) -> str:
        base = {"host": "127.0.0.1", "port": str(self.ports[port_variable]), "dbname": self.env["POSTGRES_DB"],
                "user": "postgres", "password": self.env["POSTGRES_PASSWORD"], "connect_timeout": "5", **extra}
        return " ".join(f"{k}={v}" for k, v in base.items())

    def connect(self, port_variable: str = "COORDINATOR_PORT", **extra: Any) -> psycopg.Connection:
        return psycopg.connect(self.conninfo(port_variable), autocommit=True, **extra)

    def url(self, port_variable: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[port_variable]}{path}"


def project_env(prefix: str, ports: dict[str, int], **extra: str) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root",
           "POSTGRES_DB": "exadb", "POSTGRES_PASSWORD": "pw:" + secrets.token_urlsafe(18),
           "GRAFANA_PASSWORD": secrets.token_urlsafe(18), "API_SECRET_KEY": secrets.token_hex(32),
           "EXAPG_ADMIN_PASSWORD": "Adm1n-" + secrets.token_urlsafe(12),
           "EXAPG_SUBNET": f"{prefix}.0.0/16", "EXAPG_IP_PREFIX": prefix,
           "COORDINATOR_MEMORY_LIMIT": "2G", "COORDINATOR_MEMORY_RESERVATION": "256M",
           "COORDINATOR_CPUS": "2.0", "COORDINATOR_CPUS_RESERVATION": "0.5",
           **{name: str(port) for name, port in ports.items()}, **extra}
    for variable in STAND_INS:
        env.setdefault(variable, image_for(variable))
    return env


@contextmanager
def project(files: list[str], **extra: str) -> Iterator[Project]:
    """A fresh project; `down --volumes` at the end whatever happened."""
    engine_or_skip()
    name = f"exapgt{secrets.token_hex(3)}"
    ports = dict(zip(PORT_VARIABLES, distinct_free_ports(len(PORT_VARIABLES)), strict=True))
    if "EXAPG_DATA_DIR" in extra:  # production directories: the backups beside them, never /opt/exapg
        extra.setdefault("EXAPG_BACKUP_DIR", str(Path(extra["EXAPG_DATA_DIR"]).parent / "backup"))
    prefix = free_prefix()
    HANDED_OUT.add(prefix)
    env = project_env(prefix, ports, COMPOSE_PROJECT_NAME=name, **extra)
    running = Project(files, env, name, ports)
    try:
        yield running
    finally:
        running.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False, timeout=300)
        HANDED_OUT.discard(prefix)


def documented(command: str) -> str:
    """`command` as docs/docker.md prints it in a code block (continued lines joined, a
    trailing `  # comment` left off), else a failure."""
    assert command in doc_commands(), f"docs/docker.md does not print: {command}"
    return command


def doc_commands() -> set[str]:
    commands, pending, inside = set(), "", False
    for line in DOCKER_DOCS.read_text().splitlines():
        if line.strip().startswith("```"):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        text = pending + line.strip()
        if text.endswith("\\"):
            pending = text[:-1].rstrip() + " "
            continue
        pending = ""
        commands.add(re.sub(r"\s+#\s.*$", "", text))
    return commands


def shell(command: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """One line of the docs run as a user's shell would run it (bash, pipefail)."""
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    return result


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    """Poll `check` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as exc:  # retried until the deadline
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what} not within {timeout:.0f} s (last: {last!r})")


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of Prometheus text format, or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None
