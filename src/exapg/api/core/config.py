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
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from exapg.errors import ConfigurationError

DEFAULT_TOKEN_TTL = 8 * 3600
MIN_SECRET_LENGTH = 32
REPO_UI_DIR = Path(__file__).resolve().parents[4] / "frontend" / "dist"
PACKAGED_UI_DIR = Path(__file__).resolve().parents[2] / "static" / "ui"


@dataclass(frozen=True)
class ApiConfig:
    secret_key: str
    admin_password: str | None
    frontend_origins: tuple[str, ...]
    prometheus_url: str | None
    token_ttl: int = DEFAULT_TOKEN_TTL
    ui_dir: Path | None = None
    sample_interval: float = 5.0
    overview_ttl: float = 1.0
    session_ttl: float = 1.0

    def __post_init__(self) -> None:
        if len(self.secret_key) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"API_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters: "
                "generate one with 'python -c \"import secrets; print(secrets.token_urlsafe(48))\"'"
            )


def frontend_origins(frontend_port: int, env: Mapping[str, str]) -> tuple[str, ...]:
    configured = env.get("EXAPG_FRONTEND_ORIGIN", "").strip()
    if configured:
        return tuple(o.strip().rstrip("/") for o in configured.split(",") if o.strip())
    return (f"http://localhost:{frontend_port}", f"http://127.0.0.1:{frontend_port}")


def token_ttl(env: Mapping[str, str]) -> int:
    raw = env.get("EXAPG_TOKEN_TTL", "").strip()
    if not raw:
        return DEFAULT_TOKEN_TTL
    if not raw.isdigit() or not 60 <= int(raw) <= 7 * 86400:
        raise ConfigurationError("EXAPG_TOKEN_TTL: seconds between 60 and 604800")
    return int(raw)


def ui_dir(env: Mapping[str, str]) -> Path | None:
    """The built front end, if any: EXAPG_UI_DIR, the package's copy, or the repository's."""
    configured = env.get("EXAPG_UI_DIR")
    candidates = [Path(configured)] if configured else [PACKAGED_UI_DIR, REPO_UI_DIR]
    return next((p for p in candidates if (p / "index.html").is_file()), None)


def environ() -> Mapping[str, str]:
    return os.environ


def sample_interval(env: Mapping[str, str]) -> float:
    raw = env.get("EXAPG_SAMPLE_INTERVAL", "").strip()
    try:
        value = float(raw) if raw else 5.0
    except ValueError:
        value = -1.0
    if not 0.5 <= value <= 300:
        raise ConfigurationError("EXAPG_SAMPLE_INTERVAL: seconds between 0.5 and 300")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float, high: float) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not 0 <= value <= high:
        raise ConfigurationError(f"{name}: seconds between 0 and {high:g}")
    return value


def overview_ttl(env: Mapping[str, str]) -> float:
    return _seconds(env, "EXAPG_OVERVIEW_TTL", 1.0, 60)


def session_ttl(env: Mapping[str, str]) -> float:
    return _seconds(env, "EXAPG_SESSION_TTL", 1.0, 10)
