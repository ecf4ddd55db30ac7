"""Where the PostgreSQL binaries are: resolved in one place, once."""

from __future__ import annotations

import glob
import re
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from exapg.errors import MissingDependencyError
from exapg.proc import run

REQUIRED = ("initdb", "pg_ctl", "postgres", "pg_basebackup", "pg_isready", "psql")
SUPPORTED_MAJOR = 15
INSTALL_HINT = "install them with 'apt-get install postgresql-15' or set EXAPG_PG_BINDIR"


@dataclass(frozen=True)
class PgBinaries:
    bindir: Path

    def __call__(self, name: str) -> Path:
        return self.bindir / name

    @cached_property
    def major_version(self) -> int:
        out = run([self("postgres"), "--version"], timeout=10).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        if not match:
            raise MissingDependencyError(f"cannot read the PostgreSQL version from {out!r}")
        return int(match.group(1))

    def pg_config(self, option: str) -> Path | None:
        tool = self("pg_config")
        if not tool.exists():
            return None
        return Path(run([tool, option], timeout=10).stdout.strip())

    def has_extension(self, name: str) -> bool:
        """True when the extension's control file is installed for these binaries."""
        sharedir = self.pg_config("--sharedir") or self.bindir.parent.parent.parent / "share" / (
            f"postgresql/{self.bindir.parent.name}"
        )
        return (sharedir / "extension" / f"{name}.control").is_file()


def _candidates(override: Path | None) -> list[Path]:
    if override is not None:
        return [override]
    found = [Path(f"/usr/lib/postgresql/{SUPPORTED_MAJOR}/bin")]
    found += sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")), reverse=True)
    on_path = shutil.which("postgres")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    return found


def find_binaries(override: Path | None = None) -> PgBinaries:
    """The first directory that has every binary ExaPG drives, or MissingDependencyError."""
    for bindir in _candidates(override):
        if all((bindir / name).is_file() for name in REQUIRED):
            return PgBinaries(bindir)
    where = str(override) if override else "/usr/lib/postgresql/*/bin and PATH"
    missing = ", ".join(REQUIRED)
    raise MissingDependencyError(
        f"PostgreSQL server binaries ({missing}) not found in {where}: {INSTALL_HINT}"
    )
