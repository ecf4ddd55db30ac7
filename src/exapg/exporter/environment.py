"""Exporter settings, read from the environment variables of its specification (plus a few of our own).

A mistake in where the exporter itself listens is fatal (nothing could be served); a
mistake in a database address is not: that server is reported down with one log line
and the exporter keeps serving, so a container does not crash-loop over a typo.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from exapg.errors import ConfigurationError

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class ServerAddress:
    """One PostgreSQL server to watch; `problem` is set when its address is unusable."""

    role: str  # configured role: "primary" or "standby"
    host: str
    port: int
    problem: str | None = None
    raw: str = ""
    name: str | None = None  # configured `server` label, instead of host:port

    @property
    def label(self) -> str:
        """The `server` label: the configured name, else host:port ([v6]:port)."""
        if self.name:
            return self.name
        if self.problem:
            return self.raw
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class ExporterConfig:
    primary: ServerAddress
    standbys: tuple[ServerAddress, ...]
    dbname: str = "postgres"
    user: str = "postgres"
    password: str | None = None
    sslmode: str = "prefer"
    sslrootcert: str | None = None
    listen_address: str = "0.0.0.0"  # noqa: S104 - a container must listen beyond loopback
    port: int = 9188
    connect_timeout: int = 2
    statement_timeout_ms: int = 500
    scrape_timeout: float = 0.8
    heartbeat: bool = True
    log_level: str = "INFO"
    checksum_tables: tuple[str, ...] = field(default_factory=tuple)
    checksum_interval: float = 300.0

    @property
    def servers(self) -> tuple[ServerAddress, ...]:
        return (self.primary, *self.standbys)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExporterConfig:
        """Build the configuration; raise ConfigurationError listing every fatal problem."""
        env = {k: v for k, v in (os.environ if environ is None else environ).items() if v != ""}
        problems: list[str] = []
        reader = _Reader(env, problems)
        config = cls(
            primary=parse_address(
                "primary", f"{env.get('PRIMARY_HOST', 'localhost')}:{env.get('PRIMARY_PORT', '5432')}",
                name=env.get("PRIMARY_NAME"),
            ),
            standbys=_standbys(env),
            dbname=env.get("POSTGRES_DB", "postgres"),
            user=env.get("POSTGRES_USER", "postgres"),
            password=_password(env, problems),
            sslmode=reader.choice("POSTGRES_SSLMODE", "prefer", SSL_MODES),
            sslrootcert=env.get("POSTGRES_SSLROOTCERT"),
            listen_address=env.get("EXPORTER_LISTEN_ADDRESS", "0.0.0.0"),  # noqa: S104
            port=reader.integer("EXPORTER_PORT", 9188, 1, 65535),
            connect_timeout=reader.integer("EXPORTER_CONNECT_TIMEOUT", 2, 1, 60),
            statement_timeout_ms=reader.integer("EXPORTER_STATEMENT_TIMEOUT_MS", 500, 10, 60_000),
            scrape_timeout=reader.number("EXPORTER_SCRAPE_TIMEOUT", 0.8, 0.05, 60.0),
            heartbeat=reader.boolean("EXPORTER_HEARTBEAT", True),
            log_level=reader.choice("EXPORTER_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
            checksum_tables=tuple(
                t.strip() for t in env.get("EXPORTER_CHECKSUM_TABLES", "").split(",") if t.strip()
            ),
            checksum_interval=reader.number("EXPORTER_CHECKSUM_INTERVAL", 300.0, 1.0, 86400.0),
        )
        # A server that has not answered when the scrape must be answered is treated as
        # hung; so its own statement timeout has to fire first.
        if config.statement_timeout_ms / 1000 >= config.scrape_timeout:
            problems.append(
                "EXPORTER_STATEMENT_TIMEOUT_MS must be below EXPORTER_SCRAPE_TIMEOUT "
                f"({config.statement_timeout_ms} ms >= {config.scrape_timeout} s)"
            )
        if problems:
            raise ConfigurationError(f"invalid exporter settings: {'; '.join(problems)}", problems)
        return config

    def address_problems(self) -> list[str]:
        """Unusable database addresses: reported, not fatal."""
        return [f"{s.role} {s.raw!r}: {s.problem}" for s in self.servers if s.problem]


def parse_address(role: str, text: str, name: str | None = None) -> ServerAddress:
    """'host:port', '[v6]:port' or 'host' (port 5432), optionally 'name=' first, to an
    address; never raises."""
    raw = text.strip()
    if "=" in raw:
        given, _, raw = raw.partition("=")
        name = given.strip() or name
        raw = raw.strip()
    address = _parse_host_port(role, raw)
    return replace(address, name=name) if name else address


def _parse_host_port(role: str, raw: str) -> ServerAddress:
    host, sep, port_text = raw.rpartition(":")
    if raw.startswith("[") and "]" in raw:
        inner, _, rest = raw[1:].partition("]")
        host, port_text = inner, rest[1:] if rest.startswith(":") else "5432"
    elif not sep or ":" in host:  # no port, or a bare IPv6 address
        host, port_text = raw, "5432"
    if not host:
        return ServerAddress(role, "", 0, "empty host name", raw)
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        return ServerAddress(role, host, 0, f"port {port_text!r} is not a number from 1 to 65535", raw)
    return ServerAddress(role, host, int(port_text), None, raw)


def _standbys(env: Mapping[str, str]) -> tuple[ServerAddress, ...]:
    """STANDBY_HOSTS (host:port,...) when set, else STANDBY_HOST/STANDBY_PORT."""
    listed = env.get("STANDBY_HOSTS")
    if listed:
        return tuple(parse_address("standby", item) for item in listed.split(",") if item.strip())
    if "STANDBY_HOST" not in env:
        return ()
    return (parse_address("standby", f"{env['STANDBY_HOST']}:{env.get('STANDBY_PORT', '5432')}",
                          name=env.get("STANDBY_NAME")),)


def _password(env: Mapping[str, str], problems: list[str]) -> str | None:
    """POSTGRES_PASSWORD_FILE (Docker secrets) wins over POSTGRES_PASSWORD."""
    path = env.get("POSTGRES_PASSWORD_FILE")
    if not path:
        return env.get("POSTGRES_PASSWORD")
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.append(f"POSTGRES_PASSWORD_FILE: cannot read {path}: {exc.strerror}")
        return None


class _Reader:
    """Typed reads of optional variables; every problem is collected, none raised."""

    def __init__(self, env: Mapping[str, str], problems: list[str]) -> None:
        self.env, self.problems = env, problems

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        text = self.env.get(name)
        if text is None:
            return default
        if text.strip().isdigit() and low <= int(text) <= high:
            return int(text)
        self.problems.append(f"{name}: expected a whole number from {low} to {high}, got {text!r}")
        return default

    def number(self, name: str, default: float, low: float, high: float) -> float:
        text = self.env.get(name)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if low <= value <= high:
            return value
        self.problems.append(f"{name}: expected a number from {low} to {high}, got {text!r}")
        return default

    def boolean(self, name: str, default: bool) -> bool:
        text = self.env.get(name)
        if text is None:
            return default
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name}: expected on or off, got {text!r}")
        return default

    def choice(self, name: str, default: str, allowed: tuple[str, ...], upper: bool = False) -> str:
        text = self.env.get(name)
        if text is None:
            return default
        value = text.upper() if upper else text
        if value in allowed:
            return value
        self.problems.append(f"{name}: expected one of {', '.join(allowed)}, got {text!r}")
        return default
