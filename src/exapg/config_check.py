"""Every problem of the effective settings, one line each: what `exapg config validate`
prints, and what `exapg up` (either backend) checks before it changes anything.

Settings.load already refuses values of the wrong type or range; these are the rules that
need more than one value, or this machine: weak secrets, ports used twice or held by
another process, an address this machine does not have, too little memory.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections import defaultdict
from collections.abc import Set
from pathlib import Path

from exapg import passwords
from exapg.errors import ConfigurationError, ExaPGError
from exapg.settings import Settings

MIN_PASSWORD = passwords.MIN_PASSWORD
MIN_SECRET_KEY = 32
# A quarter goes to shared_buffers, whose floor is 128MB per node (postgres/conf.py).
MIN_MEMORY = 512 * 1024**2
LOCAL_SERVICE_PORTS = ("COORDINATOR_PORT", "STANDBY_PORT", "PGBOUNCER_PORT", "EXPORTER_PORT",
                       "POSTGRES_EXPORTER_PORT", "PROMETHEUS_PORT", "MGMT_BACKEND_PORT")
ALL_ADDRESSES = ("*", "0.0.0.0")  # noqa: S104 - how PostgreSQL and sockets spell "every address"


def password_problem(name: str, password: str, settings: Settings) -> str | None:
    """A reason why `password` is weak, or None (the rule lives in `exapg.passwords`)."""
    return passwords.password_problem(name, password, (settings.postgres_user, settings.postgres_db))


def secret_problems(settings: Settings, *, docker: bool = False) -> list[str]:
    """Weak given secrets (generated ones are strong); Grafana's only where it runs (Docker)."""
    secrets = [("POSTGRES_PASSWORD", settings.postgres_password),
               ("EXAPG_ADMIN_PASSWORD", settings.admin_password)]
    if docker:
        secrets.append(("GRAFANA_PASSWORD", settings.grafana_password))
    found = [password_problem(name, secret.get_secret_value(), settings)
             for name, secret in secrets if secret is not None]
    key = settings.api_secret_key
    if key is not None and len(key.get_secret_value()) < MIN_SECRET_KEY:
        found.append(f"API_SECRET_KEY: too short (use at least {MIN_SECRET_KEY} random characters)")
    return [p for p in found if p]


def local_ports(settings: Settings) -> dict[str, int]:
    """Ports the local runtime binds: the specification's services that run on this machine."""
    ports = settings.named_ports()
    return {name: ports[name] for name in LOCAL_SERVICE_PORTS} | {
        k: v for k, v in ports.items() if k.startswith("WORKER")
    }


def docker_ports(settings: Settings) -> dict[str, int]:
    """Host ports the compose files publish (worker1 and worker2 always)."""
    return settings.named_ports() | {f"WORKER{i}_PORT": settings.worker_port(i) for i in (1, 2)}


def duplicate_problems(ports: dict[str, int]) -> list[str]:
    by_port: dict[int, list[str]] = defaultdict(list)
    for name, port in ports.items():
        by_port[port].append(name)
    return [f"{' and '.join(names)}: both use port {port}" for port, names in sorted(by_port.items())
            if len(names) > 1]


def bind_host(address: str) -> str:
    return "0.0.0.0" if address in ALL_ADDRESSES or address == "" else address  # noqa: S104


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_host(host), port))
        except OSError:
            return False
    return True


def listen_address_problem(settings: Settings, *, local: bool = True) -> str | None:
    """EXAPG_LISTEN_ADDRESS must be one IPv4 address (or localhost); locally, one of this
    machine's. PostgreSQL, pgBouncer, Prometheus, the exporters and the API all listen on it,
    and the Go and Python servers take neither PostgreSQL's '*' nor a list."""
    address = settings.listen_address.strip()
    shown = f"EXAPG_LISTEN_ADDRESS: {address!r}"
    if local and address == "*":
        return f"{shown}: Prometheus and the exporters cannot listen on '*'; use 0.0.0.0 for every address"
    if address not in (*ALL_ADDRESSES, "localhost"):
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return f"{shown} is not an IPv4 address (use 127.0.0.1, an address of this machine, or 0.0.0.0)"
        if parsed.version != 4:
            return f"{shown}: IPv6 is not supported (Prometheus takes host:port); use an IPv4 address"
    if local and not port_free(address, 0):
        return f"{shown} is not an address of this machine (use 127.0.0.1, one of its addresses, or 0.0.0.0)"
    return None


def taken_problems(settings: Settings, ports: dict[str, int], ours: Set[int] = frozenset()) -> list[str]:
    """Ports held by another process; `ours` are the ports this stack's own running
    services hold, which are fine (the local runtime knows them: runtime/preflight.py)."""
    return [
        f"{name}: port {port} is already in use by another process"
        for name, port in ports.items()
        if port not in ours and not port_free(settings.listen_address, port)
    ]


def memory_problem(settings: Settings) -> str | None:
    limit = settings.memory_limit
    if limit is not None and limit < MIN_MEMORY:
        return (f"EXAPG_MEMORY_LIMIT: {limit} bytes is too little; give the stack at least "
                f"{MIN_MEMORY // 1024**2}MB (or leave it unset: this machine's memory)")
    return None


def service_user_problem(settings: Settings) -> str | None:
    from exapg.proc import ServiceUser

    try:
        ServiceUser.resolve(settings.service_user)
    except ExaPGError as exc:
        return f"EXAPG_SERVICE_USER: {exc}"
    return None


def state_dir_problem(path: Path) -> str | None:
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return (f"EXAPG_STATE_DIR: the state directory {path} is not writable ({existing} is not "
                "a writable directory): choose a writable one")
    return None


def problems(settings: Settings, *, ours: Set[int] = frozenset(), backend: str | None = None) -> list[str]:
    """Every problem for `backend` (default: the settings' own)."""
    if (backend or settings.backend) == "docker":
        return duplicate_problems(docker_ports(settings)) + secret_problems(settings, docker=True)
    ports = local_ports(settings)
    address = listen_address_problem(settings)
    found = duplicate_problems(ports)
    found += [address] if address else taken_problems(settings, ports, ours)
    found += secret_problems(settings)
    found += settings.backup_problems()
    found += [p for p in (memory_problem(settings), service_user_problem(settings),
                          state_dir_problem(settings.state_dir)) if p]
    return found


def require_valid(settings: Settings, *, ours: Set[int] = frozenset(), backend: str | None = None) -> None:
    """Raise one ConfigurationError listing every problem; nothing has been changed yet."""
    found = problems(settings, ours=ours, backend=backend)
    if found:
        raise ConfigurationError(
            f"settings refused, nothing was changed: {'; '.join(found)}", problems=found
        )
