"""Running external programs: one place for timeouts, `LANG=C` and the service user.

As root, PostgreSQL and the supervised daemons run as the service user
(`EXAPG_SERVICE_USER`, default `postgres`); as any other user they run as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from exapg.errors import CommandError, ConfigurationError, OperationTimeoutError


@dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gid: int
    home: str

    @property
    def switch(self) -> bool:
        """True when programs must be started as another user than ours."""
        return self.uid != os.geteuid()

    @classmethod
    def resolve(cls, configured: str) -> ServiceUser:
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
        else:
            try:
                entry = pwd.getpwnam(configured)
            except KeyError:
                raise ConfigurationError(
                    f"service user {configured!r} does not exist: create it "
                    f"(useradd --system {configured}) or set EXAPG_SERVICE_USER"
                ) from None
            if entry.pw_uid == 0:
                raise ConfigurationError(
                    "PostgreSQL refuses to run as root: set EXAPG_SERVICE_USER to an unprivileged user"
                )
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)

    def chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)

    def make_dir(self, path: Path, mode: int = 0o700) -> Path:
        """Create `path` (and parents) owned by this user, with `mode` on the leaf."""
        missing = []
        for parent in [path, *path.parents]:
            if parent.exists():
                break
            missing.append(parent)
        path.mkdir(parents=True, exist_ok=True)
        for created in missing:
            self.chown(created)
        path.chmod(mode)
        self.chown(path)
        return path

    def write_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        """Write atomically (temp file + rename), owned by this user."""
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        self.chown(tmp)
        os.replace(tmp, path)


def environment(extra: Mapping[str, str] | None = None, user: ServiceUser | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"LANG": "C", "LC_ALL": "C"})
    if user is not None and user.switch:
        env.update({"HOME": user.home, "USER": user.name, "LOGNAME": user.name})
    env.update(extra or {})
    return env


def run(
    args: Sequence[str | Path],
    *,
    timeout: float,
    user: ServiceUser | None = None,
    env: Mapping[str, str] | None = None,
    what: str | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a program to completion (`stdin` is its whole input, if given); raise
    CommandError with its output when it fails."""
    argv = [str(a) for a in args]
    label = what or Path(argv[0]).name
    switch = user is not None and user.switch
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            input=stdin,
            timeout=timeout,
            env=environment(env, user),
            cwd=cwd or (user.home if switch and user and os.path.isdir(user.home) else "/"),
            user=user.uid if switch and user else None,
            group=user.gid if switch and user else None,
            extra_groups=[] if switch else None,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise OperationTimeoutError(f"{label} did not finish within {timeout:.0f}s") from exc
    except FileNotFoundError as exc:
        raise CommandError(f"{label}: program not found: {argv[0]}") from exc
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        last = output.splitlines()[-1] if output else f"exit code {result.returncode}"
        raise CommandError(f"{label} failed: {last}", output=output, returncode=result.returncode)
    return result


def find_program(*candidates: str | Path) -> str | None:
    """The first of `candidates` that runs: a name looked up on PATH, or an absolute path
    (Debian installs some daemons in /usr/sbin, outside a normal user's PATH)."""
    for candidate in candidates:
        path = Path(candidate)
        if path.is_absolute():
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
        elif found := shutil.which(str(candidate)):
            return found
    return None


def pid_alive(pid: int) -> bool:
    """A process with this pid exists (another user's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Call `check` until it returns True (True) or `timeout` seconds have passed (False);
    it is always called at least once, and once more at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    return True
