"""`exapg config validate`: every problem of the effective settings, one line each."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from exapg import passwords
from exapg.runtime.local import LocalRuntime, port_free
from exapg.settings import Settings


def password_problem(name: str, password: str, settings: Settings) -> str | None:
    """A reason why `password` is weak, or None (the rule lives in `exapg.passwords`)."""
    return passwords.password_problem(name, password, (settings.postgres_user, settings.postgres_db))


def local_ports(settings: Settings) -> dict[str, int]:
    """Ports the local runtime binds: the seed's services that run on this machine."""
    names = ("COORDINATOR_PORT", "STANDBY_PORT", "PGBOUNCER_PORT", "EXPORTER_PORT",
             "POSTGRES_EXPORTER_PORT", "PROMETHEUS_PORT", "MGMT_BACKEND_PORT")
    ports = settings.named_ports()
    return {name: ports[name] for name in names} | {
        k: v for k, v in ports.items() if k.startswith("WORKER")
    }


def duplicate_problems(ports: dict[str, int]) -> list[str]:
    by_port: dict[int, list[str]] = defaultdict(list)
    for name, port in ports.items():
        by_port[port].append(name)
    return [f"{' and '.join(names)}: both use port {port}" for port, names in sorted(by_port.items())
            if len(names) > 1]


def taken_problems(settings: Settings, ports: dict[str, int]) -> list[str]:
    """Ports held by another process (ports of this stack's running services are fine)."""
    ours = _our_ports(settings)
    return [
        f"{name}: port {port} is already in use by another process"
        for name, port in ports.items()
        if port not in ours and not port_free(settings.listen_address, port)
    ]


def _our_ports(settings: Settings) -> set[int]:
    runtime = LocalRuntime(settings)
    try:
        if runtime.state() is None:
            return set()
        return {s.port for s in runtime.status() if s.port and s.pid}
    except Exception:
        return set()


def state_dir_problem(path: Path) -> str | None:
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return f"EXAPG_STATE_DIR: {path} is not writable ({existing} is not a writable directory)"
    return None


def problems(settings: Settings) -> list[str]:
    found = []
    ports = local_ports(settings)
    found += duplicate_problems(ports)
    found += taken_problems(settings, ports)
    for name, secret in (("POSTGRES_PASSWORD", settings.postgres_password),
                         ("EXAPG_ADMIN_PASSWORD", settings.admin_password)):
        if secret is not None:
            found += [p for p in [password_problem(name, secret.get_secret_value(), settings)] if p]
    if settings.api_secret_key is not None and len(settings.api_secret_key.get_secret_value()) < 32:
        found.append("API_SECRET_KEY: too short (use at least 32 random characters)")
    found += [p for p in [state_dir_problem(settings.state_dir)] if p]
    return found
