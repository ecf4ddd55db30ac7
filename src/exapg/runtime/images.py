"""ExaPG's images, built from one Debian bookworm base without a public image registry.

`exapg images build`:
1. the base: `debian:bookworm-slim` (or EXAPG_BASE_IMAGE) when the engine has it or can
   pull it, else `exapg/debian:bookworm` bootstrapped from Debian's packages
   (`debootstrap --variant=minbase`, then `docker import`);
2. the wheelhouse: ExaPG and its dependencies as wheels built on the host
   (`pip wheel`), so no build step reaches a package index (air-gapped hosts too);
3. a Citus source for the builder stage of exapg/postgres: the tree the user gives
   (--citus-source or EXAPG_CITUS_SOURCE), else the build tries Citus's release archive;
4. every image, tagged `latest` and the package version, skipped when an image with the
   same inputs (a hash kept in a label) exists.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from exapg import __version__
from exapg.errors import CommandError, InvalidParameterError, MissingDependencyError, OperationTimeoutError
from exapg.proc import find_program

REPO = Path(__file__).resolve().parents[3]
BUILD_DIR = REPO / "build" / "docker"
WHEELS = BUILD_DIR / "wheels"
CITUS_TREE = BUILD_DIR / "citus"
PLACEHOLDER = "README.md"  # the one tracked file of each build/docker folder
# Where a Citus source tree is looked for when none is named (a tree kept outside the checkout).
DEFAULT_CITUS_SOURCE = Path.home() / ".cache" / "exapg" / "citus-src"
DEFAULT_BASE = "debian:bookworm-slim"
BOOTSTRAPPED_BASE = "exapg/debian:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
INPUTS_LABEL = "org.exapg.inputs"
BASE_LABEL = "org.exapg.base"
PULL_TIMEOUT = 120
BUILD_TIMEOUT = 3600
# What a minbase root keeps that an image does not need (debian:bookworm-slim drops the same).
SLIM_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*",
                 "/usr/share/lintian/*")

Say = Callable[[str], None]
# The wheelhouse counts by what it was built from (pyproject.toml and src/exapg), not by
# its bytes: wheels built twice from the same sources differ in their timestamps.
WHEEL_STAMP = "build/docker/wheels/.inputs"


@dataclass(frozen=True)
class Image:
    name: str
    dockerfile: str
    inputs: tuple[str, ...]  # paths under the repository the image copies
    target: str | None = None
    tag: str | None = None  # a fixed tag instead of latest + the version (stand-ins)

    def tags(self) -> list[str]:
        if self.tag:
            return [f"{self.name}:{self.tag}"]
        return [f"{self.name}:latest", f"{self.name}:{__version__}"]


IMAGES = (
    Image("exapg/postgres", "docker/Dockerfile",
          ("docker/postgres", "config/postgresql", "sql/init", "src/exapg/__init__.py", "src/exapg/errors.py",
           "src/exapg/cluster", "src/exapg/postgres", "build/docker/citus"), target="runtime"),
    Image("exapg/pgbouncer", "docker/Dockerfile.pgbouncer", ("config/pgbouncer", "docker/pgbouncer")),
    Image("exapg/replication-exporter", "docker/Dockerfile.replication-exporter",
          (WHEEL_STAMP, "src/exapg/__init__.py", "src/exapg/errors.py", "src/exapg/exporter")),
    Image("exapg/mgmt-backend", "docker/Dockerfile.mgmt-backend", (WHEEL_STAMP,)),
    Image("exapg/mgmt-frontend", "docker/Dockerfile.mgmt-frontend", ("docker/nginx", "frontend/dist")),
)
# Official third-party images stay the default for users; these Debian-package builds
# stand in where they cannot be pulled (PROMETHEUS_IMAGE, POSTGRES_EXPORTER_IMAGE).
STAND_INS = (
    Image("exapg/prometheus", "docker/Dockerfile.prometheus", (), tag="debian"),
    Image("exapg/postgres-exporter", "docker/Dockerfile.postgres-exporter", (), tag="debian"),
)


def docker(args: Sequence[str], *, timeout: float, stdin: int | IO[bytes] | None = None, capture: bool = True
           ) -> subprocess.CompletedProcess[str]:
    binary = find_program("docker")
    if not binary:
        raise MissingDependencyError("the docker command is not installed (apt-get install docker.io)")
    try:
        return subprocess.run([binary, *args], text=True, check=False, timeout=timeout, stdin=stdin,
                              capture_output=capture)
    except subprocess.TimeoutExpired:
        raise OperationTimeoutError(f"docker {args[0]} took longer than {timeout:.0f} s") from None


def image_id(name: str) -> str | None:
    result = docker(["image", "inspect", "--format", "{{.Id}}", name], timeout=30)
    return result.stdout.strip() if result.returncode == 0 else None


def image_label(name: str, label: str) -> str | None:
    fmt = "{{index .Config.Labels \"" + label + "\"}}"
    result = docker(["image", "inspect", "--format", fmt, name], timeout=30)
    value = result.stdout.strip()
    return value if result.returncode == 0 and value not in ("", "<no value>") else None


def resolve_base(requested: str | None, say: Say) -> str:
    """The base image to build on: the requested one if present or pullable, else ours."""
    wanted = requested or os.environ.get("EXAPG_BASE_IMAGE") or DEFAULT_BASE
    if image_id(wanted):
        return wanted
    if wanted != BOOTSTRAPPED_BASE:
        say(f"pulling {wanted}")
        pulled = docker(["pull", "-q", wanted], timeout=PULL_TIMEOUT)
        if pulled.returncode == 0:
            return wanted
        if requested:
            raise CommandError(f"the base image {wanted} is not here and cannot be pulled: {last_line(pulled)}")
        say(f"{wanted} cannot be pulled ({last_line(pulled)}); using {BOOTSTRAPPED_BASE}")
    if not image_id(BOOTSTRAPPED_BASE):
        bootstrap_base(BOOTSTRAPPED_BASE, say)
    return BOOTSTRAPPED_BASE


def bootstrap_base(name: str, say: Say) -> None:
    """A bookworm minbase root from Debian's packages, imported as `name`."""
    tool = find_program("debootstrap", "/usr/sbin/debootstrap")
    if not tool:
        raise MissingDependencyError(
            f"no base image can be pulled and debootstrap is missing to make {name}: apt-get install debootstrap")
    if os.geteuid() != 0:
        raise MissingDependencyError(f"making the base image {name} with debootstrap needs root")
    mirror = os.environ.get("EXAPG_DEBIAN_MIRROR") or DEBIAN_MIRROR
    say(f"bootstrapping {name} from {mirror} (debootstrap, about a minute)")
    with tempfile.TemporaryDirectory(prefix="exapg-rootfs-") as tmp:
        root = Path(tmp) / "root"
        run_checked([tool, "--variant=minbase", "bookworm", str(root), mirror], timeout=1800,
                    what="debootstrap")
        slim_root(root)
        import_root(root, name)
    say(f"{name}: imported")


def slim_root(root: Path) -> None:
    """Drop documentation and caches now and in every later package install."""
    rules = "".join(f"path-exclude {pattern}\n" for pattern in SLIM_EXCLUDES)
    (root / "etc/dpkg/dpkg.cfg.d/exapg-slim").write_text(rules + "path-include /usr/share/doc/*/copyright\n")
    (root / "etc/apt/apt.conf.d/exapg-slim").write_text(
        'APT::Install-Recommends "false";\nAcquire::Languages "none";\n'
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };\n')
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*",
                    "usr/share/doc/*", "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*"):
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def import_root(root: Path, name: str) -> None:
    with subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE) as tar:
        result = docker(["import", "--change", 'CMD ["bash"]', "-", name], timeout=600, stdin=tar.stdout)
    if result.returncode != 0 or tar.returncode != 0:
        raise CommandError(f"docker import of {name} failed: {last_line(result)}")


def run_checked(argv: Sequence[str], *, timeout: float, what: str, cwd: Path | None = None) -> str:
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise OperationTimeoutError(f"{what} took longer than {timeout:.0f} s") from None
    if result.returncode != 0:
        raise CommandError(f"{what} failed: {last_line(result)}", output=result.stderr, returncode=result.returncode)
    return result.stdout


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = ((result.stderr or "") + (result.stdout or "")).strip().splitlines()
    return lines[-1] if lines else f"exit code {result.returncode}"


def tree_digest(paths: Iterable[Path], root: Path = REPO) -> str:
    """A hash of the names, modes and contents of every file under `paths`."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for item in files:
            if "__pycache__" in item.parts or item.suffix == ".pyc":
                continue
            digest.update(f"{item.relative_to(root)}\0{item.stat().st_mode & 0o777}\0".encode())
            digest.update(hashlib.sha256(item.read_bytes()).digest())
    return digest.hexdigest()


def build_wheelhouse(say: Say) -> None:
    """Wheels of ExaPG and its dependencies, remade only when the package changed."""
    stamp = WHEELS / ".inputs"
    inputs = tree_digest([REPO / "pyproject.toml", REPO / "src" / "exapg"])
    if stamp.is_file() and stamp.read_text() == inputs:
        say("wheelhouse: up to date")
        return
    say("wheelhouse: pip wheel (ExaPG and its dependencies, from the host)")
    for old in WHEELS.glob("*.whl"):
        old.unlink()
    run_checked([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(WHEELS), str(REPO)],
                timeout=1800, what="pip wheel")
    stamp.write_text(inputs)
    say(f"wheelhouse: {len(list(WHEELS.glob('*.whl')))} wheels in {WHEELS.relative_to(REPO)}")


def stage_citus(source: str | None, say: Say) -> None:
    """Copy a Citus source tree into the build context (build/docker/citus), or empty it."""
    given = source or os.environ.get("EXAPG_CITUS_SOURCE")
    if not given and (DEFAULT_CITUS_SOURCE / "configure").is_file():
        given = str(DEFAULT_CITUS_SOURCE)
    if given and not (Path(given) / "configure").is_file():
        raise MissingDependencyError(f"{given} is not a Citus source tree (no configure script)")
    wanted = "tree/" + tree_digest([Path(given)], Path(given)) if given else ""
    stamp = BUILD_DIR / ".citus-inputs"
    if (stamp.read_text() if stamp.is_file() else "") == wanted:
        return
    for item in CITUS_TREE.iterdir():
        if item.name != PLACEHOLDER:
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    if given:
        say(f"Citus source: {given}")
        # Into a folder of its own: the tree's files (its README among them) never mix
        # with ExaPG's placeholder.
        shutil.copytree(given, CITUS_TREE / "tree", symlinks=True, ignore=shutil.ignore_patterns(".git"))
    stamp.write_text(wanted)


def build_image(image: Image, base: str, base_id: str, say: Say, citus_mode: str) -> str:
    """Build one image unless one with the same inputs exists; returns what happened."""
    args = {"BASE_IMAGE": base, **({"CITUS_SOURCE": citus_mode} if image.name == "exapg/postgres" else {})}
    inputs = tree_digest([REPO / image.dockerfile, *(REPO / p for p in image.inputs)])
    inputs = hashlib.sha256(f"{inputs}{base_id}{sorted(args.items())}".encode()).hexdigest()
    if all(image_label(tag, INPUTS_LABEL) == inputs for tag in image.tags()):
        return "up to date"
    say(f"{image.name}: building")
    argv = ["build", "--label", f"{INPUTS_LABEL}={inputs}", "--label", f"{BASE_LABEL}={base}", "-f", image.dockerfile]
    argv += [f"--build-arg={k}={v}" for k, v in args.items()]
    argv += ["--target", image.target] if image.target else []
    for tag in image.tags():
        argv += ["-t", tag]
    result = docker([*argv, str(REPO)], timeout=BUILD_TIMEOUT)
    if result.returncode != 0:
        raise CommandError(f"building {image.name} failed: {last_line(result)}", output=result.stdout + result.stderr,
                           returncode=result.returncode)
    return "built"


def citus_in(name: str) -> str:
    """The Citus version inside an exapg/postgres image, or 'none'."""
    result = docker(["run", "--rm", "--entrypoint", "cat", name, "/usr/share/exapg/citus"], timeout=120)
    return result.stdout.strip() if result.returncode == 0 else "none"


def build_all(*, base: str | None = None, citus_source: str | None = None, citus_mode: str = "auto",
              stand_ins: bool = True, say: Say = print) -> dict[str, str]:
    """Every ExaPG image (and the stand-ins); returns image name -> what was done."""
    if not (REPO / "frontend" / "dist" / "index.html").is_file():
        raise MissingDependencyError("frontend/dist is missing, which exapg/mgmt-frontend serves: run make frontend")
    for folder in (WHEELS, CITUS_TREE):
        folder.mkdir(parents=True, exist_ok=True)
    base_name = resolve_base(base, say)
    base_id = image_id(base_name) or ""
    build_wheelhouse(say)
    stage_citus(citus_source, say)
    done = {}
    for image in (*IMAGES, *(STAND_INS if stand_ins else ())):
        done[image.name] = build_image(image, base_name, base_id, say, citus_mode)
        say(f"{image.name}: {done[image.name]}")
    done["citus"] = citus_in("exapg/postgres:latest")
    return done


# A registry host (with port) and a path, as docker names them: registry.example.com:5000/team/exapg
PREFIX_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$")


def push_all(prefix: str, *, version: str = __version__, say: Say = print) -> list[str]:
    """Tag ExaPG's images as PREFIX/NAME:VERSION and :latest and push them; the compose
    files pull them from there with EXAPG_IMAGE_PREFIX=PREFIX (and EXAPG_VERSION)."""
    if not PREFIX_PATTERN.match(prefix):
        raise InvalidParameterError(
            f"{prefix!r} is not a registry path: give host[:port]/path, e.g. registry.example.com:5000/exapg")
    pushed = []
    for image in IMAGES:
        local = f"{image.name}:{version}"
        if not image_id(local):
            raise MissingDependencyError(f"{local} is not built: run 'exapg images build' first")
        for tag in (version, "latest"):
            remote = f"{prefix}/{image.name.split('/', 1)[1]}:{tag}"
            tagged = docker(["tag", local, remote], timeout=60)
            if tagged.returncode != 0:
                raise CommandError(f"docker tag {remote} failed: {last_line(tagged)}")
            say(f"pushing {remote}")
            result = docker(["push", remote], timeout=BUILD_TIMEOUT)
            if result.returncode != 0:
                raise CommandError(f"docker push {remote} failed: {last_line(result)}")
            pushed.append(remote)
    return pushed
