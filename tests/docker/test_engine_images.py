"""`exapg images build` on the real engine: a second run rebuilds nothing, every image
runs as the user its Dockerfile names, and the base is one Debian bookworm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docker.engine import OURS, docker, engine_or_skip

pytestmark = pytest.mark.timeout(1800)
REPO = Path(__file__).resolve().parents[2]


def test_a_second_build_reuses_every_image():
    engine_or_skip()
    done = subprocess.run([sys.executable, "-m", "exapg.cli.main", "images", "build", "--json"], cwd=REPO,
                          env={**os.environ}, capture_output=True, text=True, timeout=1700, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    again = subprocess.run([sys.executable, "-m", "exapg.cli.main", "images", "build", "--json"], cwd=REPO,
                           env={**os.environ}, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    report = json.loads(again.stdout)
    assert {name: report[name] for name in OURS} == {name: "up to date" for name in OURS}, report


@pytest.mark.parametrize(("image", "user"), [
    ("exapg/postgres", "999:999"), ("exapg/pgbouncer", "10002:10002"), ("exapg/replication-exporter", "exporter"),
    ("exapg/mgmt-backend", "10001:10001"), ("exapg/mgmt-frontend", "101"),
])
def test_images_run_unprivileged_on_one_debian_base(image, user):
    engine_or_skip()
    config = json.loads(docker("image", "inspect", f"{image}:latest").stdout)[0]["Config"]
    assert config["User"] == user
    release = docker("run", "--rm", "--entrypoint", "cat", f"{image}:latest", "/etc/debian_version").stdout
    assert release.startswith("12."), release
    whoami = docker("run", "--rm", "--entrypoint", "id", f"{image}:latest", "-u").stdout.strip()
    assert whoami != "0"
