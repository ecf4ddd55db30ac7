"""Secrets of a local stack: generated once, kept in a 0600 file in the state directory.

A value given in the environment (POSTGRES_PASSWORD, API_SECRET_KEY, EXAPG_ADMIN_PASSWORD,
or their *_FILE forms) wins over the stored one at the next `exapg up`; everything else is
generated with `secrets.token_urlsafe` the first time a stack is set up and reused afterwards.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from exapg.errors import ConfigurationError
from exapg.postgres import passfile
from exapg.proc import ServiceUser
from exapg.settings import Settings

REPLICATION_USER = "replicator"


@dataclass(frozen=True)
class Secrets:
    postgres_password: str
    replication_password: str
    api_secret_key: str
    admin_password: str


def _generate() -> dict[str, str]:
    return {
        "postgres_password": secrets.token_urlsafe(24),
        "replication_password": secrets.token_urlsafe(24),
        "api_secret_key": secrets.token_urlsafe(48),
        "admin_password": secrets.token_urlsafe(16),
    }


def _given(settings: Settings) -> dict[str, str]:
    pairs = {
        "postgres_password": settings.postgres_password,
        "api_secret_key": settings.api_secret_key,
        "admin_password": settings.admin_password,
    }
    return {key: value.get_secret_value() for key, value in pairs.items() if value is not None}


def read_secrets(path: Path) -> dict[str, str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"secrets file {path} is unreadable or corrupted ({exc}): restore it from a backup; "
            "the databases still hold the old passwords"
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigurationError(f"secrets file {path} is corrupted: restore it from a backup")
    return data


def _chosen(stored: dict[str, str], given: dict[str, str]) -> Secrets:
    merged = {**_generate(), **stored, **given}
    return Secrets(**{k: merged[k] for k in Secrets.__dataclass_fields__})


def load_or_create(path: Path, settings: Settings, user: ServiceUser, *, apply_given: bool = True) -> Secrets:
    """The stack's secrets; missing ones are generated and the file (re)written 0600.

    With apply_given=False (every command but `up`) values given in the environment are
    not taken: the stored ones are what the running servers hold until `up` applies a
    change (`up` changes the role's password before it stores the new one).
    """
    stored = read_secrets(path) or {}
    chosen = _chosen(stored, _given(settings) if apply_given else {})
    if asdict(chosen) != stored:
        save(path, chosen, user)
    return chosen


def pending(path: Path, settings: Settings) -> tuple[Secrets, str | None]:
    """What `up` will store, and the stored database password it replaces (None: no change)."""
    stored = read_secrets(path) or {}
    chosen = _chosen(stored, _given(settings))
    old = stored.get("postgres_password")
    return chosen, (old if old and old != chosen.postgres_password else None)


def save(path: Path, secrets: Secrets, user: ServiceUser) -> None:
    user.write_file(path, json.dumps(asdict(secrets), indent=2) + "\n", 0o600)


def pgpass(secrets: Secrets, superuser: str) -> str:
    """A libpq password file for the superuser and the replication user, any local server."""
    return passfile.render([
        (superuser, secrets.postgres_password),
        (REPLICATION_USER, secrets.replication_password),
    ])


def as_dict(secrets: Secrets) -> dict[str, str]:
    return asdict(secrets)
