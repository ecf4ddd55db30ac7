"""A throw-away PostgreSQL server run with the Docker image's configuration files."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "postgresql"
PASSWORD = "scratch-Pass:w0rd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bindir() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql-15)")


def as_service_user() -> dict:
    """subprocess arguments to run as `postgres` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def give(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for item in [path, *path.rglob("*")]:
            os.chown(item, entry.pw_uid, entry.pw_gid)


@dataclass
class Scratch:
    root: Path
    port: int
    bindir: Path

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres connect_timeout=5"

    def stop(self) -> None:
        subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                        "stop"], capture_output=True, check=False, timeout=60, **as_service_user())


def image_conf(root: Path) -> Path:
    """The image's postgresql.conf with paths of this machine (and no Citus if absent)."""
    text = (CONFIG_DIR / "postgresql.conf").read_text()
    for expected in ("/etc/postgresql/pg_hba.conf", "'/var/run/postgresql'", "shared_buffers = '1024MB'"):
        assert expected in text, f"config/postgresql/postgresql.conf no longer has {expected}"
    text = text.replace("/etc/postgresql/pg_hba.conf", str(CONFIG_DIR / "pg_hba.conf"))
    text = text.replace("/var/run/postgresql", str(root))
    text = text.replace("shared_buffers = '1024MB'", "shared_buffers = '32MB'")
    if not (bindir().parent / "lib" / "citus.so").exists():
        text = text.replace("'citus,pg_stat_statements'", "'pg_stat_statements'")
    conf = root / "postgresql.conf"
    conf.write_text(text)
    return conf


def start(root: Path, options: str = "") -> Scratch:
    root.mkdir(parents=True, exist_ok=True)
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD)
    conf = image_conf(root)
    give(root)
    bins = bindir()
    user = as_service_user()
    subprocess.run([str(bins / "initdb"), "-D", str(root / "data"), "-U", "postgres",
                    "--auth=scram-sha-256", f"--pwfile={pwfile}"],
                   capture_output=True, check=True, timeout=120, **user)
    port = free_port()
    subprocess.run([str(bins / "pg_ctl"), "-D", str(root / "data"), "-w", "-t", "60", "-l", str(root / "log"),
                    "-o", f"-c config_file={conf} -p {port} {options}", "start"],
                   capture_output=True, check=True, timeout=90, **user)
    time.sleep(0.2)
    return Scratch(root, port, bins)


def scratch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(shutil.os.path.realpath(tmp_path_factory.mktemp("pg")))
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o011)  # traversable by the service user
    return path
