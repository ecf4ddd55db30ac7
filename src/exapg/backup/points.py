"""The restore points ExaPG made, kept in a file of the state directory.

PostgreSQL writes a restore point into the WAL and nowhere else: nothing lists them short
of decoding the archive. So every point `exapg backup restore-point` (or a cluster-mode
backup) makes is also written here. A file, not a table: a restore brings back an older copy
of the database (which would forget the points after the target), and the list is needed
most when the database is damaged or gone; the state directory must survive anyway.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

Writer = Callable[[Path, str], None]


@dataclass(frozen=True)
class RestorePoint:
    name: str
    created: float  # UNIX time
    lsn: str  # the coordinator's
    cluster: bool  # made by Citus on every node at one instant


def load(path: Path) -> list[RestorePoint]:
    """The points recorded, oldest first; none when the file does not exist."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    return [RestorePoint(str(e["name"]), float(e["created"]), str(e["lsn"]), bool(e["cluster"]))
            for e in entries]


def add(path: Path, point: RestorePoint, write: Writer) -> None:
    """Append one point; concurrent writers (CLI, API) take turns on a lock file beside it."""
    lock = os.open(path.with_name(f".{path.name}.lock"), os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        points = [*load(path), point]
        write(path, json.dumps([asdict(p) for p in points], indent=1) + "\n")
    finally:
        os.close(lock)
