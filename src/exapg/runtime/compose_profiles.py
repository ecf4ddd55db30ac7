"""The Docker specification's file combinations: which compose files a profile and each
addition name. Apart from the docker runtime so `exapg compose --help` can name them
without loading Compose's helpers."""

from __future__ import annotations

from collections.abc import Sequence

from exapg.errors import InvalidParameterError

BASE = "docker-compose.yml"
PROFILES: dict[str, tuple[str, ...]] = {
    "dev": (BASE, "docker-compose.override.yml"),
    "prod": (BASE, "docker-compose.prod.yml"),
    "full": (BASE, "docker-compose.monitoring.yml", "docker-compose.mgmt.yml"),
}
EXTRAS = {
    "ha": "docker-compose.ha.yml",
    "security": "docker-compose.security.yml",
    "monitoring": "docker-compose.monitoring.yml",
    "mgmt": "docker-compose.mgmt.yml",
    "prod": "docker-compose.prod.yml",
}


def compose_files(profile: str, extras: Sequence[str] = ()) -> list[str]:
    if profile not in PROFILES:
        raise InvalidParameterError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    files = list(PROFILES[profile])
    for extra in extras:
        if extra not in EXTRAS:
            raise InvalidParameterError(f"unknown addition {extra!r}: use {', '.join(EXTRAS)}")
        if EXTRAS[extra] not in files:
            files.append(EXTRAS[extra])
    return files
