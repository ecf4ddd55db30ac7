"""One PostgreSQL server (data directory): initdb, pg_ctl, pg_isready, pg_basebackup, pg_rewind.

The server is tracked through its `postmaster.pid`, never by staying its parent, so a
later CLI invocation sees the same server state as the one that started it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from exapg.errors import CommandError, OperationTimeoutError
from exapg.postgres.binaries import PgBinaries
from exapg.proc import ServiceUser, run, wait_until


class PgIsReady(IntEnum):
    """Exit codes of pg_isready."""

    ACCEPTING = 0
    REJECTING = 1
    NO_RESPONSE = 2
    NO_ATTEMPT = 3


@dataclass(frozen=True)
class PidFile:
    """The lines of postmaster.pid that matter (see PostgreSQL's pidfile.h)."""

    pid: int
    port: int | None
    status: str  # "starting", "stopping", "ready" or "standby"


def read_pidfile(datadir: Path) -> PidFile | None:
    """The live postmaster of `datadir`, or None (absent, stale or unreadable pidfile)."""
    try:
        lines = (datadir / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    pid = _holder(lines)
    if pid is None:
        return None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    status = lines[7].strip() if len(lines) > 7 else "ready"
    return PidFile(pid, port, status)


def lock_holder(lock: Path) -> int | None:
    """The live postgres process a lock file (postmaster.pid, a socket's lock) names; None
    when it names none that runs, or is absent or unreadable."""
    try:
        return _holder(lock.read_text(encoding="utf-8").splitlines())
    except OSError:
        return None


def _holder(lines: list[str]) -> int | None:
    """The pid on a lock file's first line, when that postgres process runs."""
    try:
        pid = int(lines[0])
    except (ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    """A postgres process that runs (a killed one can linger as a zombie until reaped)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return comm in ("postgres", "postmaster") and state != "Z"


def parse_controldata(text: str) -> dict[str, str]:
    """'Name:   value' lines of pg_controldata into a mapping."""
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


def pg_isready(
    binaries: PgBinaries, host: str, port: int, *, user: str = "postgres",
    dbname: str = "postgres", timeout: int = 3,
) -> PgIsReady:
    """pg_isready's answer as an enum (its exit code; its text is never parsed)."""
    try:
        run(
            [binaries("pg_isready"), "-h", host, "-p", str(port), "-U", user, "-d", dbname,
             "-t", str(timeout)],
            timeout=timeout + 5,
            what="pg_isready",
        )
    except CommandError as exc:
        known = {member.value for member in PgIsReady}
        return PgIsReady(exc.returncode if exc.returncode in known else PgIsReady.NO_RESPONSE)
    return PgIsReady.ACCEPTING


@dataclass
class PostgresServer:
    datadir: Path
    port: int
    binaries: PgBinaries
    user: ServiceUser
    socket_dir: Path
    logfile: Path
    env: dict[str, str] = field(default_factory=dict)  # the postmaster's environment (PGPASSFILE)

    # -- facts -------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").is_file()

    def pidfile(self) -> PidFile | None:
        return read_pidfile(self.datadir)

    def remove_stale_pidfile(self) -> bool:
        """Remove the postmaster.pid, and the socket's lock file, of a postmaster that no
        longer runs. PostgreSQL clears stale ones itself, except while the dead postmaster
        lingers as a zombie (its pid still answers a signal): it then refuses to start
        ("lock file ... already exists"). The caller has made sure no process of it is left.
        True when postmaster.pid was removed."""
        if self.pidfile() is not None:
            return False
        lock = self.socket_dir / f".s.PGSQL.{self.port}.lock"
        if lock_holder(lock) is None:
            lock.unlink(missing_ok=True)
        path = self.datadir / "postmaster.pid"
        if not path.exists():
            return False
        path.unlink(missing_ok=True)
        return True

    def isready(self, host: str = "127.0.0.1", timeout: int = 3) -> PgIsReady:
        return pg_isready(self.binaries, host, self.port, timeout=timeout)

    def in_recovery(self) -> bool:
        return (self.datadir / "standby.signal").exists()

    # -- actions -----------------------------------------------------------
    def initdb(self, superuser: str, pwfile: Path, timeout: float = 120) -> None:
        """Initialize into a temporary directory, then rename: an interrupted initdb
        leaves no half-made data directory behind to be mistaken for a real one."""
        tmp = self._scratch("initdb")
        run(
            [
                self.binaries("initdb"),
                "-D", tmp,
                "-U", superuser,
                "--pwfile", pwfile,
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--data-checksums",
            ],
            timeout=timeout,
            user=self.user,
            what="initdb",
        )
        os.replace(tmp, self.datadir)

    def basebackup(
        self, *, host: str, port: int, user: str, slot: str, passfile: Path, timeout: float
    ) -> None:
        """Clone a primary with pg_basebackup (WAL streamed, through `slot`)."""
        tmp = self._scratch("basebackup")
        run(
            [
                self.binaries("pg_basebackup"),
                "-D", tmp,
                "-h", host,
                "-p", str(port),
                "-U", user,
                "-X", "stream",
                "-S", slot,
                "-c", "fast",
                "-w",
            ],
            timeout=timeout,
            user=self.user,
            env={"PGPASSFILE": str(passfile), "PGCONNECT_TIMEOUT": "5"},
            what=f"pg_basebackup from {host}:{port}",
        )
        os.replace(tmp, self.datadir)

    def start(self, timeout: float) -> None:
        run(
            [
                self.binaries("pg_ctl"), "start",
                "-D", self.datadir,
                "-l", self.logfile,
                "-w", "-t", str(int(timeout)),
                "-o", f"-p {self.port} -k {self.socket_dir}",
            ],
            timeout=timeout + 10,
            user=self.user,
            env=self.env,
            what=f"pg_ctl start ({self.datadir.name})",
        )

    def stop(self, timeout: float = 60, mode: str = "fast") -> bool:
        """Stop the server if it runs; True when it was running."""
        if self.pidfile() is None:
            return False
        try:
            run(
                [self.binaries("pg_ctl"), "stop", "-D", self.datadir, "-m", mode, "-w",
                 "-t", str(int(timeout))],
                timeout=timeout + 10,
                user=self.user,
                what=f"pg_ctl stop ({self.datadir.name})",
            )
        except CommandError:
            if self.pidfile() is not None:
                raise
        return True

    def promote(self, timeout: float = 60) -> None:
        run(
            [self.binaries("pg_ctl"), "promote", "-D", self.datadir, "-w", "-t", str(int(timeout))],
            timeout=timeout + 10,
            user=self.user,
            what="pg_ctl promote",
        )

    def controldata(self) -> dict[str, str]:
        """pg_controldata's fields (LANG=C), e.g. "Latest checkpoint location",
        "Database cluster state"; readable while the server is stopped."""
        result = run([self.binaries("pg_controldata"), "-D", self.datadir], timeout=30, user=self.user,
                     what="pg_controldata")
        return parse_controldata(result.stdout)

    def rewind(self, source: str, *, passfile: Path, timeout: float) -> bool:
        """pg_rewind this (stopped) server onto the running server `source` (a conninfo);
        PostgreSQL 13+ first finishes crash recovery of a server that was not shut down
        cleanly. False when nothing needed rewinding."""
        result = run(
            [self.binaries("pg_rewind"), f"--target-pgdata={self.datadir}", f"--source-server={source}"],
            timeout=timeout, user=self.user,
            env={"PGPASSFILE": str(passfile), "PGCONNECT_TIMEOUT": "5"},
            what=f"pg_rewind ({self.datadir.name})",
        )
        return "no rewind required" not in (result.stdout + result.stderr)

    def recover(self, timeout: float) -> None:
        """Finish the crash recovery of a stopped server that was not shut down cleanly, in
        single-user mode (it listens on no port: no client gets in); it ends with a shutdown
        checkpoint, so pg_controldata then says where its WAL ends."""
        run([self.binaries("postgres"), "--single", "-D", self.datadir, "template1"], stdin="",
            timeout=timeout, user=self.user, env=self.env, what=f"crash recovery of {self.datadir.name}")

    def wait_ready(self, timeout: float, host: str = "127.0.0.1") -> None:
        if not wait_until(lambda: self.isready(host, timeout=2) == PgIsReady.ACCEPTING, timeout):
            raise OperationTimeoutError(
                f"{self.datadir.name} on port {self.port} not ready after {timeout:.0f}s: see {self.logfile}"
            )

    def _scratch(self, kind: str) -> Path:
        """A fresh temporary directory beside the data directory, owned by the service user."""
        tmp = self.datadir.with_name(f".{self.datadir.name}.{kind}-incomplete")
        if tmp.exists():
            shutil.rmtree(tmp)  # left by an interrupted run: never held user data
        self.user.make_dir(tmp, 0o700)
        return tmp
