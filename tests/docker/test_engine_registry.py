"""Publishing: `exapg images push` to a registry (Debian's docker-registry, on loopback),
then the specification's CI/CD deploy sequence (pull, up -d, ps) against it, the images named by
EXAPG_IMAGE_PREFIX and EXAPG_VERSION."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exapg import __version__
from tests.docker.engine import OURS, docker, engine_or_skip, http_get, project
from tests.docker.scratch import free_port

pytestmark = pytest.mark.timeout(1200)
REPO = Path(__file__).resolve().parents[2]


def exapg(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exapg.cli.main", *args], cwd=REPO, env={**os.environ},
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def registry(tmp_path):
    engine_or_skip()
    binary = shutil.which("docker-registry")
    if not binary:
        pytest.skip("Debian's docker-registry is not installed (make test installs it)")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'store'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: warn\n")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            if http_get(f"http://127.0.0.1:{port}/v2/")[0] == 200:
                break
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "docker-registry did not start"
        time.sleep(0.3)
    prefix = f"127.0.0.1:{port}/exapg"
    yield port, prefix
    proc.terminate()
    proc.wait(timeout=30)
    for name in OURS:
        for tag in (__version__, "latest"):
            docker("rmi", f"{prefix}/{name.split('/', 1)[1]}:{tag}", check=False)


def test_pushed_images_deploy_with_the_seeds_sequence(registry, tmp_path):
    port, prefix = registry
    pushed = exapg("images", "push", "--to", prefix)
    assert pushed.returncode == 0, pushed.stderr
    assert f"EXAPG_IMAGE_PREFIX={prefix} EXAPG_VERSION={__version__}" in pushed.stdout
    catalog = http_get(f"http://127.0.0.1:{port}/v2/_catalog")[1]
    for name in OURS:
        assert f'"{name}"' in catalog.replace(" ", ""), catalog
        tags = http_get(f"http://127.0.0.1:{port}/v2/{name}/tags/list")[1]
        assert __version__ in tags and "latest" in tags
    for name in OURS:  # the deploying host has none of them yet
        docker("rmi", f"{prefix}/{name.split('/', 1)[1]}:{__version__}", check=False)

    dirs = {"EXAPG_DATA_DIR": str(tmp_path / "data"), "EXAPG_CONFIG_DIR": str(tmp_path / "config"),
            "EXAPG_LOG_DIR": str(tmp_path / "logs")}
    files = ["docker-compose.yml", "docker-compose.prod.yml"]
    with project(files, EXAPG_IMAGE_PREFIX=prefix, EXAPG_VERSION=__version__, **dirs) as stack:
        from exapg.runtime.docker import prepare_production_dirs

        prepare_production_dirs(stack.env)
        stack.compose("pull", "coordinator", "pgbouncer")  # the specification's deploy: pull, up -d, ps
        stack.compose("up", "-d", "coordinator", "pgbouncer")
        stack.wait_healthy("coordinator", "pgbouncer")
        listed = stack.compose("ps").stdout
        assert listed.count("(healthy)") == 2, listed
        assert stack.inspect("coordinator")["Config"]["Image"] == f"{prefix}/postgres:{__version__}"
        with stack.connect("PGBOUNCER_PORT") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("bad", ["http://registry.example.com/exapg", "registry.example.com/", "Reg/X", "a b/c"])
def test_push_refuses_what_is_not_a_registry_path(bad):
    done = exapg("images", "push", "--to", bad, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is not a registry path" in done.stderr
