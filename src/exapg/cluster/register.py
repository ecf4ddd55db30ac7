"""A worker registers itself with (or drains itself off) the Citus coordinator.

The worker containers run it (`exapg-worker` in the exapg/postgres image calls
`python3 -m exapg.cluster.register`) with the same membership code as the local
runtime (`exapg.cluster.citus`). It imports nothing beyond the standard library and
psycopg, which the image takes from Debian. Configured by the Docker specification's variables:
COORDINATOR_HOST, COORDINATOR_PORT, POSTGRES_DB, POSTGRES_USER, POSTGRES_PASSWORD(_FILE),
plus CITUS_NODE_NAME (default: this container's host name, which Docker's DNS resolves)
and CITUS_NODE_PORT (5432).

    register            add this node once (idempotent), retrying while the coordinator starts
    register --loop S   then check again every S seconds (a rebuilt coordinator gets it back)
    drain               move every shard away, check none is left, remove the node
    status              this node's row in pg_dist_node, as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path

import psycopg

from exapg.cluster import citus
from exapg.errors import ExaPGError, InvalidParameterError, first_line
from exapg.postgres.conn import Dsn, connect

RETRY_SECONDS = 3.0


def _password() -> str:
    path = os.environ.get("POSTGRES_PASSWORD_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    value = os.environ.get("POSTGRES_PASSWORD")
    if not value:
        raise ExaPGError("POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required")
    return value


def _port(name: str, default: str) -> int:
    value = os.environ.get(name, default)
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise InvalidParameterError(f"{name} must be a port number, not {value!r}")
    return int(value)


def coordinator_dsn() -> Dsn:
    return Dsn(
        os.environ.get("COORDINATOR_HOST", "coordinator"),
        _port("COORDINATOR_PORT", "5432"),
        os.environ.get("POSTGRES_DB", "exadb"),
        os.environ.get("POSTGRES_USER", "postgres"),
        _password(),
    )


def worker_address() -> tuple[str, int]:
    host = os.environ.get("CITUS_NODE_NAME") or socket.gethostname()
    return host, _port("CITUS_NODE_PORT", "5432")


def _local_server_listens(port: int) -> bool:
    """The real server, not the entrypoint's init server (which listens on no TCP port)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def register_once() -> bool:
    host, port = worker_address()
    with connect(coordinator_dsn(), statement_timeout_ms=60_000) as conn:
        return citus.register_worker(conn, host, port)


def register(timeout: float, wait_local: bool) -> bool:
    """Register this worker, retrying until it works; True when it was added."""
    host, port = worker_address()
    deadline = time.monotonic() + timeout
    while True:
        try:
            if wait_local and not _local_server_listens(port):
                raise ExaPGError(f"the local server does not listen on port {port} yet")
            return register_once()
        except (ExaPGError, psycopg.Error) as exc:
            if time.monotonic() > deadline:
                raise ExaPGError(f"could not register {host}:{port} with the coordinator: {exc}") from None
            time.sleep(RETRY_SECONDS)


def keep_registered(interval: float) -> None:
    """Check the registration again every `interval` seconds, for ever."""
    while True:
        time.sleep(interval)
        try:
            if register_once():
                log("registered again with the coordinator")
        except (ExaPGError, psycopg.Error) as exc:
            log(f"coordinator unreachable ({first_line(exc, last=True)}); will check again")


def drain() -> None:
    host, port = worker_address()
    with connect(coordinator_dsn(), statement_timeout_ms=0) as conn:
        citus.remove_worker(conn, host, port)


def status() -> dict[str, object] | None:
    host, port = worker_address()
    with connect(coordinator_dsn()) as conn:
        row = conn.execute(
            "SELECT nodeid, isactive, shouldhaveshards FROM pg_dist_node WHERE nodename = %s AND nodeport = %s",
            (host, port),
        ).fetchone()
    if row is None:
        return None
    return {"node": f"{host}:{port}", "nodeid": row[0], "active": row[1], "should_have_shards": row[2]}


def log(message: str) -> None:
    try:
        name = "{}:{}".format(*worker_address())
    except ExaPGError:  # the address itself is misconfigured: the message says so
        name = os.environ.get("CITUS_NODE_NAME") or socket.gethostname()
    print(f"exapg-worker[{name}]: {message}", file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="exapg-worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("register", "drain", "status"), nargs="?", default="register")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to keep retrying a registration")
    parser.add_argument("--loop", type=float, default=0, metavar="S", help="re-check every S seconds after")
    parser.add_argument("--wait-local", action="store_true", help="first wait for the local server's TCP port")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    command = args.command
    if command == "drain":
        drain()
        log("drained and removed from the coordinator")
    elif command == "status":
        row = status()
        print(json.dumps(row))
        return 0 if row else 1
    else:
        added = register(args.timeout, args.wait_local)
        log("registered with the coordinator" if added else "already registered")
        if args.loop > 0:
            keep_registered(args.loop)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return run(args)
    except ExaPGError as exc:
        log(f"error: {first_line(exc, last=True)}")
        return int(exc.exit_code)
    except psycopg.Error as exc:
        log(f"error: database error: {first_line(exc, last=True)}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
