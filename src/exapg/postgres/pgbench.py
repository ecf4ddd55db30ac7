"""pgbench through pgBouncer and directly against the coordinator, side by side."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from exapg.errors import ExaPGError
from exapg.postgres.conn import Dsn, connect

TPS = re.compile(r"^tps = ([0-9.]+)", re.M)
FAILED = re.compile(r"number of failed transactions: (\d+)")
DONE = re.compile(r"number of transactions actually processed: (\d+)")


@dataclass(frozen=True)
class PgbenchRun:
    target: str
    port: int
    clients: int
    connect_each: bool
    tps: float | None
    transactions: int
    failed: int
    exit_code: int
    first_error: str | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Pgbench:
    """The pgbench binary, authenticating through a passfile (no password in argv)."""

    binary: Path
    passfile: Path

    def run(self, dsn: Dsn, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), "-h", dsn.host, "-p", str(dsn.port), "-U", dsn.user, *args, dsn.dbname]
        env = {**os.environ, "PGPASSFILE": str(self.passfile), "PGCONNECT_TIMEOUT": "10"}
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def initialize(self, dsn: Dsn, scale: int) -> None:
        """pgbench's tables at `scale`, made again only when they have another scale."""
        with connect(dsn) as conn:
            have = conn.execute("SELECT to_regclass('pgbench_branches') IS NOT NULL").fetchone()
            row = conn.execute("SELECT count(*) FROM pgbench_branches").fetchone() if have and have[0] else None
        if (row[0] if row else 0) == scale:
            return
        init = self.run(dsn, ["-i", "-q", "-s", str(scale)], timeout=3600)
        if init.returncode != 0:
            lines = init.stderr.strip().splitlines()
            raise ExaPGError(f"pgbench -i failed: {lines[-1] if lines else f'exit code {init.returncode}'}")

    def compare(self, targets: dict[str, Dsn], *, clients: int, seconds: int, connect_each: bool
                ) -> list[PgbenchRun]:
        """The same run against each target in turn (name -> Dsn)."""
        threads = str(max(1, min(clients, os.cpu_count() or 1)))
        common = ["-n", "-c", str(clients), "-j", threads, "-T", str(seconds), *(["-C"] if connect_each else [])]
        return [self._parse(name, dsn, clients, connect_each, self.run(dsn, common, timeout=seconds + 120))
                for name, dsn in targets.items()]

    @staticmethod
    def _parse(name: str, dsn: Dsn, clients: int, connect_each: bool,
               done: subprocess.CompletedProcess[str]) -> PgbenchRun:
        tps = TPS.search(done.stdout)
        processed = DONE.search(done.stdout)
        failed = FAILED.search(done.stdout)
        errors = [line for line in done.stderr.splitlines() if "error" in line.lower() or "abort" in line.lower()]
        return PgbenchRun(
            target=name, port=dsn.port, clients=clients, connect_each=connect_each,
            tps=float(tps.group(1)) if tps else None,
            transactions=int(processed.group(1)) if processed else 0,
            failed=int(failed.group(1)) if failed else 0,
            exit_code=done.returncode, first_error=errors[0] if errors else None,
        )
