"""Render compose files with a real Compose implementation and return the effective model."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
BASE = "docker-compose.yml"
COMBINATIONS = {
    "dev": [BASE, "docker-compose.override.yml"],
    "prod": [BASE, "docker-compose.prod.yml"],
    "full": [BASE, "docker-compose.monitoring.yml", "docker-compose.mgmt.yml"],
    "ha": [BASE, "docker-compose.ha.yml"],
    "ha-monitoring": [BASE, "docker-compose.monitoring.yml", "docker-compose.ha.yml"],
    "secure": [BASE, "docker-compose.prod.yml", "docker-compose.security.yml"],
    "everything": [
        BASE, "docker-compose.prod.yml", "docker-compose.monitoring.yml", "docker-compose.mgmt.yml",
        "docker-compose.ha.yml", "docker-compose.security.yml",
    ],
}
SECRETS = {
    "POSTGRES_PASSWORD": "pw-for-rendering-only",
    "GRAFANA_PASSWORD": "grafana-for-rendering-only",
    "API_SECRET_KEY": "k" * 40,
    "EXAPG_ADMIN_PASSWORD": "admin-for-rendering-only",
}


def compose_binary() -> str:
    found = shutil.which("docker-compose")
    if not found:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return found


def run_config(files: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with only `env` (an empty env file hides any docker/.env)."""
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    args = [compose_binary(), "--env-file", str(env_file)]
    for name in files:
        args += ["-f", str(DOCKER_DIR / name)]
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env}
    return subprocess.run(
        [*args, "config"], env=clean, capture_output=True, text=True, timeout=60, check=False
    )


_RENDERED: dict[tuple, str] = {}


def render(files: list[str], tmp_path: Path, **env: str) -> dict:
    """The effective model; each distinct rendering runs Compose once per session."""
    key = (tuple(files), tuple(sorted(env.items())))
    if key not in _RENDERED:
        result = run_config(files, {**SECRETS, **env}, tmp_path)
        assert result.returncode == 0, result.stderr
        _RENDERED[key] = result.stdout
    return yaml.safe_load(_RENDERED[key])


def published(service: dict) -> dict[int, int]:
    """target port -> published host port."""
    return {int(p["target"]): int(p["published"]) for p in service.get("ports", [])}


def address(service: dict) -> str | None:
    networks = service.get("networks") or {}
    return (networks.get("exapg_network") or {}).get("ipv4_address")
