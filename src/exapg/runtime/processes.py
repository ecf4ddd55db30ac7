"""The stack's processes as the kernel sees them: who carries the stack's mark, who listens where.

What a supervisor believes can be wrong (it died, or lost a child); /proc cannot. A
process is the stack's when it carries the stack's mark in its environment (every
supervised program does) or is the postmaster named by one of its nodes' pidfiles.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
TCP_TABLES = (PROC / "net" / "tcp", PROC / "net" / "tcp6")
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def marked(marker: str) -> list[int]:
    """Pids whose environment holds `marker` (NAME=value), this process excepted."""
    needle = marker.encode()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return sorted(found)


def listening_sockets() -> dict[int, int]:
    """Inode of every listening TCP socket of this network namespace, to its port."""
    sockets: dict[int, int] = {}
    for table in TCP_TABLES:
        try:
            lines = table.read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN:
                sockets[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    return sockets


def listening_ports(pids: Iterable[int]) -> dict[int, int]:
    """Every TCP port one of `pids` listens on, to the (lowest) pid holding it."""
    sockets = listening_sockets()
    ports: dict[int, int] = {}
    for pid in sorted(set(pids)):
        for inode in _socket_inodes(pid):
            port = sockets.get(inode)
            if port is not None:
                ports.setdefault(port, pid)
    return ports


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def in_data_dir(datadir: Path) -> list[int]:
    """PostgreSQL processes working in `datadir` (every server process runs there): after its
    postmaster was killed, its children that have not noticed yet and still hold its memory."""
    target = str(datadir.resolve())
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (os.readlink(entry / "cwd") == target
                    and (entry / "comm").read_text(encoding="utf-8").strip() in ("postgres", "postmaster")):
                found.append(int(entry.name))
        except OSError:
            continue
    return sorted(found)
