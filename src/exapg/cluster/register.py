"""A worker registers itself with (or drains itself off) the Citus coordinator.

Used by the worker containers (`python -m exapg.cluster.register [--drain]`) with the
same membership code the local runtime uses. Configured by the seed's variables:
COORDINATOR_HOST, COORDINATOR_PORT, POSTGRES_DB, POSTGRES_USER, POSTGRES_PASSWORD(_FILE),
plus WORKER_HOST (default: this container's hostname) and WORKER_PORT (5432).
Registration is idempotent and retries while the coordinator starts or restarts.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

import psycopg

from exapg.cluster import citus
from exapg.errors import ExaPGError
from exapg.postgres.conn import Dsn, connect


def _password() -> str:
    path = os.environ.get("POSTGRES_PASSWORD_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    value = os.environ.get("POSTGRES_PASSWORD")
    if not value:
        raise ExaPGError("POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required")
    return value


def coordinator_dsn() -> Dsn:
    return Dsn(
        os.environ.get("COORDINATOR_HOST", "coordinator"),
        int(os.environ.get("COORDINATOR_PORT", "5432")),
        os.environ.get("POSTGRES_DB", "exadb"),
        os.environ.get("POSTGRES_USER", "postgres"),
        _password(),
    )


def worker_address() -> tuple[str, int]:
    host = os.environ.get("WORKER_HOST") or socket.gethostname()
    return host, int(os.environ.get("WORKER_PORT", "5432"))


def register(timeout: float) -> bool:
    """Register this worker, retrying until the coordinator answers; True when added."""
    host, port = worker_address()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect(coordinator_dsn()) as conn:
                return citus.register_worker(conn, host, port)
        except (ExaPGError, psycopg.Error) as exc:
            if time.monotonic() > deadline:
                raise ExaPGError(f"could not register {host}:{port} with the coordinator: {exc}") from None
            time.sleep(2)


def drain() -> None:
    host, port = worker_address()
    with connect(coordinator_dsn(), statement_timeout_ms=0) as conn:
        citus.remove_worker(conn, host, port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exapg.cluster.register", description=__doc__)
    parser.add_argument("--drain", action="store_true", help="drain and remove this worker instead")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to keep retrying")
    args = parser.parse_args(argv)
    try:
        if args.drain:
            drain()
            print("worker drained and removed from the coordinator")
        else:
            added = register(args.timeout)
            print("worker registered" if added else "worker already registered")
    except ExaPGError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
