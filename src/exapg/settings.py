"""The one settings object of ExaPG, read from the environment and an optional `.env` file.

Variable names and defaults are those of the Docker specification (docs/docker.md), so the
same `.env` drives the local runtime and Docker Compose. ExaPG-only knobs use the
`EXAPG_` prefix. Build it once with `Settings.load()` and pass it down.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from exapg.errors import ConfigurationError

Port = Annotated[int, Field(ge=1, le=65535)]

# Variables that may instead be given as NAME_FILE (Docker secrets).
FILE_VARIABLES = ("POSTGRES_PASSWORD", "API_SECRET_KEY", "GRAFANA_PASSWORD", "EXAPG_ADMIN_PASSWORD",
                  "EXAPG_BACKUP_S3_KEY_SECRET")
WORKER_PORT_RE = re.compile(r"^WORKER(\d+)_PORT$")
PROJECT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """'4GB', '512MiB', '1g' or plain bytes to a number of bytes."""
    match = SIZE_RE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 4GB, 512MB)")
    number, unit = match.groups()
    return int(float(number) * SIZE_UNITS[(unit or "").lower()[:1]])


def default_state_root() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/exapg")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "exapg"


class Settings(BaseModel):
    """Effective settings. Field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    compose_project_name: str = Field("exapg", alias="COMPOSE_PROJECT_NAME")
    postgres_db: str = Field("exadb", alias="POSTGRES_DB")
    postgres_user: str = Field("postgres", alias="POSTGRES_USER")
    postgres_password: SecretStr | None = Field(None, alias="POSTGRES_PASSWORD")
    api_secret_key: SecretStr | None = Field(None, alias="API_SECRET_KEY")
    admin_password: SecretStr | None = Field(None, alias="EXAPG_ADMIN_PASSWORD")
    grafana_user: str = Field("admin", alias="GRAFANA_USER")
    grafana_password: SecretStr | None = Field(None, alias="GRAFANA_PASSWORD")

    coordinator_port: Port = Field(5432, alias="COORDINATOR_PORT")
    standby_port: Port = Field(5440, alias="STANDBY_PORT")
    worker_ports: dict[int, Port] = Field(default_factory=dict)
    pgbouncer_port: Port = Field(6432, alias="PGBOUNCER_PORT")
    prometheus_port: Port = Field(9090, alias="PROMETHEUS_PORT")
    grafana_port: Port = Field(3000, alias="GRAFANA_PORT")
    postgres_exporter_port: Port = Field(9187, alias="POSTGRES_EXPORTER_PORT")
    exporter_port: Port = Field(9188, alias="EXPORTER_PORT")
    mgmt_backend_port: Port = Field(8000, alias="MGMT_BACKEND_PORT")
    mgmt_frontend_port: Port = Field(3001, alias="MGMT_FRONTEND_PORT")

    pool_mode: Literal["session", "transaction", "statement"] = Field(
        "transaction", alias="POOL_MODE"
    )
    max_client_conn: Annotated[int, Field(ge=1, le=100000)] = Field(100, alias="MAX_CLIENT_CONN")
    default_pool_size: Annotated[int, Field(ge=1, le=10000)] = Field(
        20, alias="DEFAULT_POOL_SIZE"
    )

    backend: Literal["local", "docker"] = Field("local", alias="EXAPG_BACKEND")
    # Docker mode's management backend reaches the standbys it finds on this port.
    standby_node_port: Port = Field(5432, alias="EXAPG_STANDBY_NODE_PORT")
    state_dir_override: Path | None = Field(None, alias="EXAPG_STATE_DIR")
    listen_address: str = Field("127.0.0.1", alias="EXAPG_LISTEN_ADDRESS")
    pg_bindir: Path | None = Field(None, alias="EXAPG_PG_BINDIR")
    service_user: str = Field("postgres", alias="EXAPG_SERVICE_USER")
    memory_limit: int | None = Field(None, alias="EXAPG_MEMORY_LIMIT")
    cpu_limit: Annotated[int, Field(ge=1, le=1024)] | None = Field(None, alias="EXAPG_CPUS")
    start_timeout: Annotated[float, Field(gt=0, le=3600)] = Field(60.0, alias="EXAPG_START_TIMEOUT")
    # PostgreSQL's huge_pages; with try or on, ExaPG as root reserves the pages a node needs.
    huge_pages: Literal["try", "on", "off"] = Field("try", alias="EXAPG_HUGE_PAGES")

    # Backups (pgBackRest, local runtime): the repository and how long backups are kept.
    backup_repo: str | None = Field(None, alias="EXAPG_BACKUP_REPO")
    backup_repo_type: Literal["posix", "s3"] = Field("posix", alias="EXAPG_BACKUP_REPO_TYPE")
    backup_retention_full: Annotated[int, Field(ge=1, le=9999)] = Field(2, alias="EXAPG_BACKUP_RETENTION_FULL")
    backup_retention_diff: Annotated[int, Field(ge=1, le=9999)] = Field(6, alias="EXAPG_BACKUP_RETENTION_DIFF")
    backup_s3_endpoint: str | None = Field(None, alias="EXAPG_BACKUP_S3_ENDPOINT")
    backup_s3_bucket: str | None = Field(None, alias="EXAPG_BACKUP_S3_BUCKET")
    backup_s3_region: str | None = Field(None, alias="EXAPG_BACKUP_S3_REGION")
    backup_s3_key: str | None = Field(None, alias="EXAPG_BACKUP_S3_KEY")
    backup_s3_key_secret: SecretStr | None = Field(None, alias="EXAPG_BACKUP_S3_KEY_SECRET")
    backup_s3_uri_style: Literal["host", "path"] = Field("host", alias="EXAPG_BACKUP_S3_URI_STYLE")
    backup_s3_verify_tls: bool = Field(True, alias="EXAPG_BACKUP_S3_VERIFY_TLS")

    @field_validator("compose_project_name")
    @classmethod
    def _project_name(cls, value: str) -> str:
        if not PROJECT_NAME_RE.match(value):
            raise ValueError("use lower-case letters, digits, '-' and '_' (as Docker Compose does)")
        return value

    @field_validator("postgres_db", "postgres_user")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not IDENTIFIER_RE.match(value):
            raise ValueError("must be a plain SQL identifier (letters, digits, '_', at most 63)")
        return value

    @field_validator("memory_limit", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str) else value

    @property
    def backup_repo_path(self) -> str:
        """Where backups go: a directory (posix), or a path inside the S3 bucket."""
        if self.backup_repo:
            return self.backup_repo
        if self.backup_repo_type == "s3":
            return f"/exapg/{self.compose_project_name}"
        return str(self.state_dir / "backup")

    def backup_problems(self) -> list[str]:
        """What an S3 repository lacks (every problem at once), for validation."""
        if self.backup_repo_type != "s3":
            return []
        needed = {"EXAPG_BACKUP_S3_ENDPOINT": self.backup_s3_endpoint, "EXAPG_BACKUP_S3_BUCKET": self.backup_s3_bucket,
                  "EXAPG_BACKUP_S3_REGION": self.backup_s3_region, "EXAPG_BACKUP_S3_KEY": self.backup_s3_key,
                  "EXAPG_BACKUP_S3_KEY_SECRET": self.backup_s3_key_secret}
        return [f"{name}: required with EXAPG_BACKUP_REPO_TYPE=s3" for name, value in needed.items() if not value]

    @property
    def state_dir(self) -> Path:
        if self.state_dir_override is not None:
            return self.state_dir_override
        return default_state_root() / self.compose_project_name

    def worker_port(self, index: int) -> int:
        """Port of worker `index` (1-based): WORKERn_PORT, else 5432 + n as in the Compose files."""
        return self.worker_ports.get(index, 5432 + index)

    def named_ports(self) -> dict[str, int]:
        """Every port this stack listens on, by its variable name (workers only when set
        explicitly); not EXAPG_STANDBY_NODE_PORT, a port of other hosts."""
        ports = {
            field.alias: getattr(self, name)
            for name, field in type(self).model_fields.items()
            if field.alias and field.alias.endswith("_PORT") and field.alias != "EXAPG_STANDBY_NODE_PORT"
        }
        ports.update({f"WORKER{i}_PORT": p for i, p in sorted(self.worker_ports.items())})
        return ports

    def to_environment(self) -> dict[str, str]:
        """The settings as environment variables, secrets left out (they travel as files).

        A child process (a supervised program) rebuilds the very same settings from it.
        """
        env: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if not field.alias or value is None or isinstance(value, SecretStr):
                continue
            env[field.alias] = str(value)
        env.update({f"WORKER{i}_PORT": str(p) for i, p in self.worker_ports.items()})
        env["EXAPG_STATE_DIR"] = str(self.state_dir)
        env["EXAPG_ENV_FILE"] = "/nonexistent/.env"  # everything is explicit: no .env is read
        return env

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = None
    ) -> Settings:
        """Build settings from `.env` (if present) overlaid by the environment.

        Raises ConfigurationError listing every invalid variable at once.
        """
        env = dict(os.environ if environ is None else environ)
        path = Path(env_file or env.get("EXAPG_ENV_FILE") or ".env")
        values: dict[str, str] = {}
        if path.is_file():
            values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
        values.update(env)
        problems = _read_secret_files(values)
        data: dict[str, object] = {k: v for k, v in values.items() if v != ""}
        data["worker_ports"] = _worker_ports(values, problems)
        try:
            settings = cls.model_validate(data)
        except ValidationError as exc:
            problems.extend(_describe(exc))
            settings = None
        if problems or settings is None:
            raise ConfigurationError(
                f"invalid settings: {'; '.join(problems)}", problems=problems
            )
        return settings


def _read_secret_files(values: dict[str, str]) -> list[str]:
    """Resolve NAME_FILE variables (Docker secrets) into NAME, in place."""
    problems: list[str] = []
    for name in FILE_VARIABLES:
        file_name = values.get(f"{name}_FILE")
        if not file_name:
            continue
        try:
            values[name] = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{name}_FILE: cannot read {file_name}: {exc.strerror}")
    return problems


def _worker_ports(values: Mapping[str, str], problems: list[str]) -> dict[int, str]:
    ports: dict[int, str] = {}
    for key, value in values.items():
        match = WORKER_PORT_RE.match(key)
        if match and int(match.group(1)) >= 1:
            ports[int(match.group(1))] = value
    return ports


def _describe(exc: ValidationError) -> list[str]:
    """One readable line per invalid variable, named as the user spelt it."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if loc and loc[0] == "worker_ports" and len(loc) > 1:
            name = f"WORKER{loc[1]}_PORT"
        else:
            field = Settings.model_fields.get(loc[0]) if loc else None
            name = (field.alias if field and field.alias else None) or ".".join(loc)
        given = error.get("input")
        shown = "" if "PASSWORD" in name or "SECRET" in name else f" (got {given!r})"
        lines.append(f"{name}: {error['msg']}{shown}")
    return lines
