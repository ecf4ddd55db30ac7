"""The ExaPG files the exapg/postgres image copies to /opt/exapg, laid out as in the image,
so tests run the worker's registration exactly as the container does."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
IMAGE_ROOT = "/opt/exapg/"


def copied_sources() -> list[tuple[Path, str]]:
    """(file in the repository, directory in the image) for every `COPY src/exapg/...` line."""
    pairs = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if len(words) < 3 or words[0] != "COPY" or not words[1].startswith("src/exapg/"):
            continue
        *sources, target = words[1:]
        assert target.startswith(IMAGE_ROOT), f"unexpected COPY target {target}"
        pairs += [(REPO / source, target.removeprefix(IMAGE_ROOT)) for source in sources]
    return pairs


def worker_python_tree(dest: Path) -> Path:
    for source, directory in copied_sources():
        (dest / directory).mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / directory / source.name)
    dest.chmod(0o755)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest
