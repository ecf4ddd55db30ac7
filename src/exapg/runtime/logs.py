"""Reading the stack's log files: filter by time, prefix with the service, follow."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

# PostgreSQL and pgBouncer ('%m'), Python logging and ISO-8601 timestamps at line start.
STAMP_RE = re.compile(
    r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)(?:[.,](\d+))?\s?(UTC|Z|[+-]\d\d:?\d\d)?"
)
FOLLOW_POLL = 0.25


def service_logs(log_dir: Path) -> dict[str, Path]:
    """Service name -> its current log file (rotated backups are not read)."""
    if not log_dir.is_dir():
        return {}
    return {path.stem: path for path in sorted(log_dir.glob("*.log"))}


def parse_stamp(line: str) -> float | None:
    match = STAMP_RE.match(line)
    if not match:
        return None
    base, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(base.replace(" ", "T"))
    if zone and zone not in ("UTC", "Z"):
        offset = zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
        stamp = datetime.fromisoformat(f"{base.replace(' ', 'T')}{offset}")
    else:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def _format(service: str, line: str, stamp: float | None, timestamps: bool) -> str:
    prefix = f"{service} | "
    if timestamps:
        when = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds") if stamp else "-"
        prefix += f"{when} "
    return prefix + line.rstrip("\n")


def _lines(service: str, path: Path, since: float | None, timestamps: bool) -> Iterator[tuple[float | None, str]]:
    """(timestamp, formatted line); a line without a stamp inherits the previous one."""
    stamp = None
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            stamp = parse_stamp(line) or stamp
            if since is not None and (stamp is None or stamp < since):
                continue
            yield stamp, _format(service, line, stamp, timestamps)


def read(
    files: dict[str, Path], *, follow: bool, since: float | None, timestamps: bool
) -> Iterator[str]:
    """Every file's lines merged in time order, then (with follow) new lines as they come."""
    merged: list[tuple[float, int, str]] = []
    for index, (service, path) in enumerate(files.items()):
        for stamp, text in _lines(service, path, since, timestamps):
            merged.append((stamp or 0.0, index, text))
    merged.sort(key=lambda item: (item[0], item[1]))
    yield from (text for _, _, text in merged)
    if follow:
        yield from _follow(files, timestamps)


def _follow(files: dict[str, Path], timestamps: bool) -> Iterator[str]:
    handles = {}
    for service, path in files.items():
        handle = path.open(encoding="utf-8", errors="replace")
        handle.seek(0, 2)
        handles[service] = handle
    try:
        while True:
            idle = True
            for service, handle in handles.items():
                for line in iter(handle.readline, ""):
                    idle = False
                    yield _format(service, line, parse_stamp(line), timestamps)
            if idle:
                time.sleep(FOLLOW_POLL)
    finally:
        for handle in handles.values():
            handle.close()
