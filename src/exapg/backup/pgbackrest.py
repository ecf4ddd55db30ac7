"""pgBackRest, driven: its configuration rendered from the settings, its commands run as the
service user, and their answers typed (callers never read its text).

One stanza per primary node (`coordinator`, `worker1`, …), all in one repository: a
directory (`EXAPG_BACKUP_REPO`, default `<state dir>/backup`) or an S3-compatible bucket.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from exapg.errors import CommandError, ExaPGError, InvalidParameterError, MissingDependencyError
from exapg.proc import ServiceUser, find_program, run
from exapg.settings import Settings

BackupType = Literal["full", "diff", "incr"]
TargetKind = Literal["latest", "time", "lsn", "name"]
INSTALL_HINT = "install it with 'apt-get install pgbackrest'"
BACKUP_TIMEOUT = 24 * 3600.0
COMMAND_TIMEOUT = 600.0
# Lines pgBackRest's verify workers (P01…) write about one damaged or missing file.
_VERIFY_PROBLEM = re.compile(r"P(?!00)\d\d\s+(?:INFO|WARN|ERROR): (.+)$")
_VERIFY_STATUS = re.compile(r"^\s*status: (\w+)", re.MULTILINE)
_ERROR_LINE = re.compile(r"ERROR: \[(\d+)\]: (.+)")


def binary() -> str | None:
    return find_program("pgbackrest", "/usr/bin/pgbackrest")


@dataclass(frozen=True)
class StanzaNode:
    """A primary node, backed up as its own stanza."""

    name: str
    datadir: Path
    port: int


@dataclass(frozen=True)
class Paths:
    config: Path  # pgbackrest.conf
    log_dir: Path
    lock_dir: Path
    socket_dir: Path


# -- configuration -------------------------------------------------------------------------------
def repository_options(settings: Settings) -> dict[str, str]:
    """repo1-* options: where backups go and how many are kept."""
    options = {
        "repo1-type": settings.backup_repo_type,
        "repo1-path": settings.backup_repo_path,
        "repo1-retention-full-type": "count",
        "repo1-retention-full": str(settings.backup_retention_full),
        "repo1-retention-diff": str(settings.backup_retention_diff),
    }
    if settings.backup_repo_type == "s3":
        secret = settings.backup_s3_key_secret
        options.update({
            "repo1-s3-endpoint": settings.backup_s3_endpoint or "",
            "repo1-s3-bucket": settings.backup_s3_bucket or "",
            "repo1-s3-region": settings.backup_s3_region or "",
            "repo1-s3-key": settings.backup_s3_key or "",
            "repo1-s3-key-secret": secret.get_secret_value() if secret else "",
            "repo1-s3-uri-style": settings.backup_s3_uri_style,
            "repo1-storage-verify-tls": "y" if settings.backup_s3_verify_tls else "n",
        })
    return options


def render_config(settings: Settings, nodes: Iterable[StanzaNode], paths: Paths) -> str:
    """pgbackrest.conf: the repository, then one stanza per primary node.

    start-fast: a backup begins with an immediate checkpoint, not one spread over
    checkpoint_timeout (15 minutes here); lz4: the cheapest compression pgBackRest has, as
    backups of an analytics database are large and CPU is what they wait for."""
    options = {
        **repository_options(settings),
        "log-path": str(paths.log_dir),
        "lock-path": str(paths.lock_dir),
        "log-level-console": "warn",
        "log-level-file": "info",
        "start-fast": "y",
        "compress-type": "lz4",
        "process-max": "2",
        "archive-timeout": "60",
    }
    lines = ["# Written by ExaPG on every 'exapg up' (local runtime): change the settings "
             "(EXAPG_BACKUP_*), not this file.", "[global]"]
    lines += [f"{key}={value}" for key, value in options.items()]
    for node in nodes:
        lines += ["", f"[{node.name}]", f"pg1-path={node.datadir}", f"pg1-port={node.port}",
                  f"pg1-socket-path={paths.socket_dir}", f"pg1-user={settings.postgres_user}"]
    return "\n".join(lines) + "\n"


def archive_command(config: Path, stanza: str, datadir: Path) -> str:
    """PostgreSQL's archive_command: pushes one WAL segment to the node's stanza. pg1-path
    is the archiving node's own data directory: %p is relative to it."""
    program = binary() or "pgbackrest"
    return f"{program} --config={config} --stanza={stanza} --pg1-path={datadir} archive-push %p"


# -- what pgBackRest answers ------------------------------------------------------------------------
@dataclass(frozen=True)
class BackupSet:
    label: str
    type: str  # full, diff or incr
    started: float  # UNIX time
    stopped: float
    size: int  # bytes of the database it holds
    repository_size: int  # bytes it takes in the repository (compressed)
    delta: int  # bytes copied by this backup
    wal_start: str
    wal_stop: str
    lsn_start: str
    lsn_stop: str
    prior: str | None
    error: bool

    @property
    def duration(self) -> float:
        return self.stopped - self.started


@dataclass(frozen=True)
class StanzaInfo:
    name: str
    status_code: int  # pgBackRest's: 0 ok, 1 missing stanza path, 2 no valid backups, …
    status: str
    backups: tuple[BackupSet, ...]
    wal_min: str | None  # oldest and newest archived WAL segment of the current database
    wal_max: str | None

    @property
    def exists(self) -> bool:
        return self.status_code not in (1, 3)


def parse_info(text: str) -> list[StanzaInfo]:
    """`pgbackrest info --output=json`, typed."""
    return [_stanza(entry) for entry in json.loads(text)]


def _stanza(entry: dict) -> StanzaInfo:
    archives = entry.get("archive") or []
    current = archives[-1] if archives else {}
    return StanzaInfo(
        name=entry["name"], status_code=int(entry["status"]["code"]), status=entry["status"]["message"],
        backups=tuple(_backup(b) for b in entry.get("backup") or []),
        wal_min=current.get("min"), wal_max=current.get("max"),
    )


def _backup(entry: dict) -> BackupSet:
    info, archive, lsn = entry["info"], entry.get("archive") or {}, entry.get("lsn") or {}
    return BackupSet(
        label=entry["label"], type=entry["type"],
        started=float(entry["timestamp"]["start"]), stopped=float(entry["timestamp"]["stop"]),
        size=int(info["size"]), repository_size=int(info["repository"]["size"]), delta=int(info["delta"]),
        wal_start=archive.get("start") or "", wal_stop=archive.get("stop") or "",
        lsn_start=lsn.get("start") or "", lsn_stop=lsn.get("stop") or "",
        prior=entry.get("prior"), error=bool(entry.get("error", False)),
    )


@dataclass(frozen=True)
class VerifyResult:
    stanza: str
    ok: bool
    problems: tuple[str, ...]  # one per damaged or missing file, as pgBackRest names it
    summary: str  # pgBackRest's own account, per backup and WAL range


def parse_verify(stanza: str, output: str) -> VerifyResult:
    """verify's text (it exits 0 whatever it finds): the status line and the workers' findings."""
    statuses = _VERIFY_STATUS.findall(output)
    problems = tuple(m.group(1).strip() for line in output.splitlines() if (m := _VERIFY_PROBLEM.search(line)))
    summary = "\n".join(line for line in output.splitlines() if not _VERIFY_PROBLEM.search(line)).strip()
    return VerifyResult(stanza, bool(statuses) and all(s == "ok" for s in statuses) and not problems,
                        problems, summary)


# -- recovery targets -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    kind: TargetKind
    value: str | None = None

    def describe(self) -> str:
        return {"latest": "the end of the archived WAL", "time": f"time {self.value}",
                "lsn": f"LSN {self.value}", "name": f"restore point {self.value!r}"}[self.kind]


LSN_RE = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,63}$")


def parse_time(text: str) -> str:
    """An ISO 8601 time (UTC when it names no zone) in the form PostgreSQL reads."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameterError(
            f"--to {text!r}: not a time; use ISO 8601, e.g. '2026-12-03 13:45:00+00' (no zone: UTC)") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def check_name(name: str) -> str:
    """Restore point names travel on pgBackRest's command line: letters, digits, `_.:-`."""
    if not NAME_RE.match(name):
        raise InvalidParameterError(
            f"restore point name {name!r}: use up to 63 letters, digits, '_', '.', ':' or '-'")
    return name


def target_options(target: Target) -> list[str]:
    """restore's options: stop at the target, then promote (become a primary, new timeline).
    Without a target, recovery replays every archived segment and promotes at its end."""
    if target.kind == "latest":
        return ["--type=default"]
    if target.kind == "lsn" and not LSN_RE.match(target.value or ""):
        raise InvalidParameterError(f"--to-lsn {target.value!r}: not an LSN (like 0/3000060)")
    return [f"--type={target.kind}", f"--target={target.value}", "--target-action=promote"]


# -- running it ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PgBackRest:
    """pgbackrest as the service user, with the stack's configuration and password file."""

    paths: Paths
    user: ServiceUser
    passfile: Path

    def run(self, stanza: str, command: str, *options: str, timeout: float = COMMAND_TIMEOUT,
            arguments: tuple[str, ...] = ()) -> str:
        program = binary()
        if program is None:
            raise MissingDependencyError(f"pgBackRest is not installed: {INSTALL_HINT}")
        argv = [program, f"--config={self.paths.config}", f"--stanza={stanza}", *options, command, *arguments]
        try:
            result = run(argv, timeout=timeout, user=self.user, env={"PGPASSFILE": str(self.passfile)},
                         what=f"pgbackrest {command} ({stanza})")
        except CommandError as exc:
            raise CommandError(f"pgbackrest {command} ({stanza}) failed: {_reason(exc.output) or exc}",
                               output=exc.output, returncode=exc.returncode) from None
        return result.stdout

    def info(self, stanza: str) -> StanzaInfo:
        found = parse_info(self.run(stanza, "info", "--output=json", timeout=120))
        if not found:
            raise ExaPGError(f"pgbackrest info says nothing of stanza {stanza}")
        return found[0]

    def stanza_create(self, stanza: str) -> None:
        self.run(stanza, "stanza-create", timeout=120)

    def check(self, stanza: str) -> None:
        self.run(stanza, "check", timeout=180)

    def archive_push(self, stanza: str, datadir: Path, wal_file: Path) -> None:
        """Push one WAL segment or history file of the server in `datadir` (what its archiver does)."""
        self.run(stanza, "archive-push", f"--pg1-path={datadir}", timeout=COMMAND_TIMEOUT, arguments=(str(wal_file),))

    def backup(self, stanza: str, kind: BackupType) -> None:
        self.run(stanza, "backup", f"--type={kind}", timeout=BACKUP_TIMEOUT)

    def verify(self, stanza: str) -> VerifyResult:
        output = self.run(stanza, "verify", "--output=text", "--verbose", "--log-level-console=info",
                          timeout=BACKUP_TIMEOUT)
        return parse_verify(stanza, output)

    def restore(self, stanza: str, datadir: Path, target: Target, backup_set: str | None = None) -> None:
        options = [f"--pg1-path={datadir}", *target_options(target)]
        if backup_set:
            options.append(f"--set={backup_set}")
        self.run(stanza, "restore", *options, timeout=BACKUP_TIMEOUT)


def _reason(output: str) -> str:
    """pgBackRest's own error line ('ERROR: [055]: …'), without its code."""
    found = [m.group(2) for m in map(_ERROR_LINE.search, output.splitlines()) if m]
    return found[-1].strip() if found else ""
