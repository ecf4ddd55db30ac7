"""What the local runtime and the Docker images may differ in, and helpers to compare them.

The Docker files under config/ are rendered by the local runtime's own functions; the only
settings allowed to differ are the runtime-specific ones (conf.RUNTIME_SPECIFIC), the ones
derived from memory and CPUs (same formulas, other resources) and, for pgBouncer, the
addresses and paths and the @VARIABLES@ the image's entrypoint fills in.
"""

from __future__ import annotations

import re
from pathlib import Path

from exapg.postgres import conf

ROOT = Path(__file__).resolve().parents[1]
DOCKER_CONF = ROOT / "config" / "postgresql" / "postgresql.conf"
DOCKER_INI = ROOT / "config" / "pgbouncer" / "pgbouncer.ini.template"
PGBOUNCER_RUNTIME_SPECIFIC = frozenset({"listen_addr", "listen_port", "unix_socket_dir", "auth_file"})
SETTING = re.compile(r"^([a-z_.]+)\s*=\s*'((?:[^']|'')*)'\s*$")


def resource_derived() -> frozenset[str]:
    """Settings analytics_tuning derives from Resources: those that change with them."""
    small = conf.analytics_tuning(conf.Resources(512 * conf.MiB, 1, shm=64 * conf.MiB))
    big = conf.analytics_tuning(conf.Resources(96 * conf.GiB, 32))
    return frozenset(key for key in small if small[key] != big[key])


def server_conf(text: str) -> dict[str, str]:
    """`name = 'value'` lines, as conf.render writes them."""
    found = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            match = SETTING.match(line)
            assert match, f"not a rendered setting: {line!r}"
            found[match.group(1)] = match.group(2).replace("''", "'")
    return found


def pgbouncer_conf(text: str) -> dict[str, str]:
    """The [pgbouncer] section's settings (the [databases] line names the database)."""
    found = {}
    section = text.split("[pgbouncer]", 1)[1]
    for line in section.splitlines():
        if "=" in line and not line.startswith(";"):
            key, value = (part.strip() for part in line.split("=", 1))
            found[key] = value
    return found


def server_differences(local: dict[str, str], docker: dict[str, str], *, citus: bool) -> dict[str, tuple]:
    """Settings the two configurations disagree on beyond what may differ.

    Without Citus (local standalone and ha modes) the settings Citus sets are compared
    with what the local runtime has in their place; the image always has Citus's
    (its entrypoint drops the library where the image has none)."""
    allowed = conf.RUNTIME_SPECIFIC | resource_derived()
    if not citus:
        allowed |= set(conf.citus_settings())
    keys = (set(local) | set(docker)) - allowed
    return {key: (local.get(key), docker.get(key)) for key in sorted(keys) if local.get(key) != docker.get(key)}


def pgbouncer_differences(local: dict[str, str], docker: dict[str, str]) -> dict[str, tuple]:
    keys = (set(local) | set(docker)) - PGBOUNCER_RUNTIME_SPECIFIC
    return {key: (local.get(key), docker.get(key)) for key in sorted(keys)
            if local.get(key) != docker.get(key) and "@" not in (docker.get(key) or "")}
