"""The stack's state file: what `exapg up` last set up, so later commands know the shape.

Only facts that cannot be derived from the settings live here (the mode and worker
count chosen at `up`, and which node is primary now: only `switchover` and `failover`
change it). A corrupted file is reported, never silently replaced. A file written
before `primary` existed loads with the coordinator as primary.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from exapg.cluster.topology import Mode
from exapg.errors import ConfigurationError, ExaPGError
from exapg.proc import ServiceUser

VERSION = 1


@dataclass(frozen=True)
class StackState:
    project: str
    mode: Mode
    workers: int = 0
    standby: bool = False
    created: str = ""
    primary: str = "coordinator"

    @classmethod
    def new(cls, project: str, mode: Mode, workers: int, standby: bool) -> StackState:
        return cls(project, mode, workers, standby, datetime.now(UTC).isoformat(timespec="seconds"))


def load(path: Path) -> StackState | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("version") != VERSION:
            raise ValueError(f"unknown version {raw.get('version')!r}")
        return StackState(
            project=str(raw["project"]),
            mode=Mode(raw["mode"]),
            workers=int(raw["workers"]),
            standby=bool(raw["standby"]),
            created=str(raw.get("created", "")),
            primary=str(raw.get("primary", "coordinator")),
        )
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the state file {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(
            f"state file {path} is corrupted ({exc}): move it aside and run 'exapg up' "
            "again; data directories are kept and reused"
        ) from None


def save(path: Path, state: StackState, user: ServiceUser) -> None:
    data = {"version": VERSION, **asdict(state), "mode": str(state.mode)}
    user.write_file(path, json.dumps(data, indent=2) + "\n", 0o600)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialize commands that change a stack (two `up`s at once would race)."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExaPGError(
                f"another exapg command is changing this stack (lock {path}): wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
