"""What the API needs beyond `Settings`: secrets resolved, origins, and a few API-only knobs.

API-only knobs (environment):
  DATABASE_URL           Docker mode: the coordinator to use instead of a local stack
  EXAPG_FRONTEND_ORIGIN  the front end's origin allowed by CORS (default: localhost on
                         MGMT_FRONTEND_PORT)
  EXAPG_PROMETHEUS_URL   Prometheus for dashboard time series (default: 127.0.0.1 on
                         PROMETHEUS_PORT)
  EXAPG_TOKEN_TTL        token lifetime in seconds (default 8 hours)
  EXAPG_UI_DIR           the built front end to serve at / (default: frontend/dist)
  EXAPG_SAMPLE_INTERVAL  seconds between the sampler's readings (default 5)
  EXAPG_OVERVIEW_TTL     seconds an overview reading is shared between requests (default 1)
  EXAPG_SESSION_TTL      seconds a token check is remembered (default 1; 0 checks every
                         request against the database)

A blank variable counts as unset. Every invalid value is reported at start, at once, one
clause per variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from exapg.errors import ConfigurationError
from exapg.settings import Settings

DEFAULT_TOKEN_TTL = 8 * 3600
MIN_SECRET_LENGTH = 32
REPO_UI_DIR = Path(__file__).resolve().parents[4] / "frontend" / "dist"
PACKAGED_UI_DIR = Path(__file__).resolve().parents[2] / "static" / "ui"
MISSING_SECRET = "API_SECRET_KEY is not set: set it (or API_SECRET_KEY_FILE)"  # noqa: S105 - a message
SHORT_SECRET = (
    f"API_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters: "
    "generate one with 'python -c \"import secrets; print(secrets.token_urlsafe(48))\"'"
)


def _seconds(raw: object, low: float, high: float) -> float:
    """A number of seconds within [low, high] (NaN and words are out of range)."""
    try:
        value = float(str(raw))
    except ValueError:
        value = -1.0
    if not low <= value <= high:
        raise ValueError(f"seconds between {low:g} and {high:g}")
    return value


class ApiConfig(BaseModel):
    """The API's configuration. Field aliases are the environment variable names; the
    secrets come from the stack access (its secrets file, or the environment in Docker)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    secret_key: str = Field(alias="API_SECRET_KEY", repr=False)  # given by the access
    admin_password: str | None = Field(None, repr=False)
    frontend_origins: tuple[str, ...] = Field(alias="EXAPG_FRONTEND_ORIGIN")
    prometheus_url: str | None = Field(alias="EXAPG_PROMETHEUS_URL")
    token_ttl: int = Field(DEFAULT_TOKEN_TTL, alias="EXAPG_TOKEN_TTL")
    ui_dir: Path | None = Field(None, alias="EXAPG_UI_DIR")
    sample_interval: float = Field(5.0, alias="EXAPG_SAMPLE_INTERVAL")
    overview_ttl: float = Field(1.0, alias="EXAPG_OVERVIEW_TTL")
    session_ttl: float = Field(1.0, alias="EXAPG_SESSION_TTL")

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, value: str) -> str:
        if not value:
            raise ValueError(MISSING_SECRET)
        if len(value) < MIN_SECRET_LENGTH:
            raise ValueError(SHORT_SECRET)
        return value

    @field_validator("frontend_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
        return value

    @field_validator("token_ttl", mode="before")
    @classmethod
    def _token_ttl(cls, value: object) -> object:
        text = str(value)
        if not text.isdigit() or not 60 <= int(text) <= 7 * 86400:
            raise ValueError("seconds between 60 and 604800")
        return int(text)

    @field_validator("ui_dir", mode="before")
    @classmethod
    def _built_ui(cls, value: object) -> Path | None:
        """The built front end, if any: the given folder, else the package's copy or the
        repository's."""
        candidates = [Path(str(value))] if value else [PACKAGED_UI_DIR, REPO_UI_DIR]
        return next((p for p in candidates if (p / "index.html").is_file()), None)

    @field_validator("sample_interval", mode="before")
    @classmethod
    def _sample_interval(cls, value: object) -> float:
        return _seconds(value, 0.5, 300)

    @field_validator("overview_ttl", mode="before")
    @classmethod
    def _overview_ttl(cls, value: object) -> float:
        return _seconds(value, 0, 60)

    @field_validator("session_ttl", mode="before")
    @classmethod
    def _session_ttl(cls, value: object) -> float:
        return _seconds(value, 0, 10)

    @classmethod
    def load(
        cls,
        settings: Settings,
        env: Mapping[str, str],
        *,
        secret_key: str | None,
        admin_password: str | None,
    ) -> ApiConfig:
        """The configuration from `env`, with defaults from `settings`; ConfigurationError
        naming every invalid variable."""
        port = settings.mgmt_frontend_port
        data: dict[str, object] = {
            "EXAPG_FRONTEND_ORIGIN": (f"http://localhost:{port}", f"http://127.0.0.1:{port}"),
            "EXAPG_PROMETHEUS_URL": f"http://127.0.0.1:{settings.prometheus_port}",
            "EXAPG_UI_DIR": None,  # validated even when unset: the default is looked for
            "API_SECRET_KEY": secret_key or "",
            "admin_password": admin_password,
        }
        data.update({name: value.strip() for name, value in _knobs(env).items() if value.strip()})
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = _describe(exc)
            raise ConfigurationError("; ".join(problems), problems=problems) from None


def _knobs(env: Mapping[str, str]) -> dict[str, str]:
    """The variables read from the environment (not the secret: the access resolves it)."""
    names = [f.alias for f in ApiConfig.model_fields.values() if f.alias != "API_SECRET_KEY"]
    return {name: env[name] for name in names if name and name in env}


def _describe(exc: ValidationError) -> list[str]:
    """One line per invalid variable: `NAME: what it must be` (or the validator's own line)."""
    lines = []
    for error in exc.errors():
        field = ApiConfig.model_fields.get(str(error["loc"][0])) if error["loc"] else None
        name = (field.alias if field else None) or ".".join(str(p) for p in error["loc"])
        cause = error.get("ctx", {}).get("error")
        reason = str(cause) if cause is not None else error["msg"]
        lines.append(reason if reason.startswith(name) else f"{name}: {reason}")
    return lines


def environ() -> Mapping[str, str]:
    return os.environ
