"""Blue-green as documented in docs/docker.md: two projects from docker/env/*.env.example,
rendered through `exapg compose` (EXAPG_ENV_FILE), share nothing that would collide."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.docker.cli import run
from tests.docker.compose import DOCKER_DIR, SECRETS, address, compose_binary, published


def env_file(tmp_path: Path, color: str) -> Path:
    text = (DOCKER_DIR / "env" / f"{color}.env.example").read_text()
    text += "".join(f"\n{k}={v}" for k, v in SECRETS.items()) + "\n"
    path = tmp_path / f"{color}.env"
    path.write_text(text)
    return path


def rendered(tmp_path: Path, color: str) -> dict:
    path = env_file(tmp_path, color)
    outcome = run(["compose", "prod", "--with", "monitoring", "--with", "mgmt", "--with", "ha", "config"],
                  {"EXAPG_ENV_FILE": str(path)}, capture=True)
    assert outcome.code == 0, outcome.output
    return yaml.safe_load(outcome.output)


def test_blue_and_green_share_no_name_port_address_or_directory(tmp_path):
    compose_binary()
    blue, green = rendered(tmp_path, "blue"), rendered(tmp_path, "green")
    assert blue["networks"]["exapg_network"]["ipam"]["config"] != green["networks"]["exapg_network"]["ipam"]["config"]
    names = {s.get("container_name") for s in blue["services"].values()}
    assert not names & {s.get("container_name") for s in green["services"].values()} - {None}
    ports = set().union(*(published(s).values() for s in blue["services"].values()))
    assert not ports & set().union(*(published(s).values() for s in green["services"].values()))
    blue_addresses = {address(s) for s in blue["services"].values()}
    assert not blue_addresses & {address(s) for s in green["services"].values()} - {None}
    assert "/opt/exapg/blue/data/coordinator:/var/lib/postgresql/data:rw" in blue["services"]["coordinator"]["volumes"]
    green_volumes = green["services"]["coordinator"]["volumes"]
    assert "/opt/exapg/green/data/coordinator:/var/lib/postgresql/data:rw" in green_volumes


def test_examples_carry_no_secret_values():
    for path in (DOCKER_DIR / "env").glob("*.env.example"):
        for line in path.read_text().splitlines():
            if "PASSWORD" in line or "SECRET" in line:
                assert line.startswith("#") or line.rstrip().endswith("="), line
