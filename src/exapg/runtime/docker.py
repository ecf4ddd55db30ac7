"""The docker runtime: the compose files under `docker/`, driven through Docker Compose.

Profiles are the file combinations of the Docker specification:

    dev   docker-compose.yml + docker-compose.override.yml
    prod  docker-compose.yml + docker-compose.prod.yml
    full  docker-compose.yml + docker-compose.monitoring.yml + docker-compose.mgmt.yml

`extra` adds ha / security / monitoring / mgmt to any profile. Compose v2
(`docker compose`) is preferred, Compose v1 (`docker-compose`) accepted. Nothing runs
without a reachable Docker engine: that is a missing dependency (exit 4).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from exapg import config_check
from exapg.cluster import citus
from exapg.cluster.topology import Mode
from exapg.errors import (
    CommandError,
    ConfigurationError,
    InvalidParameterError,
    MissingDependencyError,
    OperationTimeoutError,
)
from exapg.postgres.conn import Dsn, connect
from exapg.proc import find_program, wait_until
from exapg.runtime.compose_profiles import EXTRAS, compose_files
from exapg.settings import FILE_VARIABLES, Settings
from exapg.stack import Progress, quiet
from exapg.status import Role, ServiceState, ServiceStatus

REPO_DOCKER_DIR = Path(__file__).resolve().parents[3] / "docker"
FIXED_WORKERS = 2  # docker-compose.yml's worker1 and worker2; more come from the scalable `worker`
REGISTER_TIMEOUT = 300
ENGINE_TIMEOUT = 10
ENGINE_FREE = {"config", "convert", "version"}  # compose subcommands that never call the engine
ROLE_BY_SERVICE = {
    "coordinator": Role.COORDINATOR, "standby": Role.STANDBY, "pgbouncer": Role.POOLER,
    "prometheus": Role.MONITORING, "grafana": Role.MONITORING, "postgres_exporter": Role.EXPORTER,
    "replication_exporter": Role.EXPORTER, "management_backend": Role.API, "management_frontend": Role.API,
}


def docker_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("EXAPG_DOCKER_DIR") or REPO_DOCKER_DIR)


def compose_command() -> list[str]:
    """`docker compose` when the v2 plugin is there, else `docker-compose`."""
    docker = find_program("docker")
    if docker and _runs([docker, "compose", "version"]):
        return [docker, "compose"]
    legacy = find_program("docker-compose")
    if legacy:
        return [legacy]
    raise MissingDependencyError(
        "Docker Compose is not installed: install Docker with the compose plugin (or docker-compose)")


def _runs(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=ENGINE_TIMEOUT, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def engine_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """Why no Docker engine can be used, or None when one answers."""
    env = os.environ if environ is None else environ
    docker = find_program("docker")
    if docker:
        try:
            result = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                    text=True, timeout=ENGINE_TIMEOUT, check=False, env=dict(env))
        except subprocess.TimeoutExpired:
            return "the Docker engine did not answer within 10 s"
        if result.returncode == 0 and result.stdout.strip():
            return None
        lines = (result.stderr or result.stdout).strip().splitlines()
        return lines[-1] if lines else "docker info failed"
    return _socket_problem(env.get("DOCKER_HOST", "unix:///var/run/docker.sock"))


def _socket_problem(host: str) -> str | None:
    if not host.startswith("unix://"):
        return None  # a remote engine: let Compose report on it
    path = host[len("unix://"):]
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(ENGINE_TIMEOUT)
            sock.connect(path)
    except OSError as exc:
        return f"cannot connect to the Docker engine at {path} ({exc.strerror or exc})"
    return None


def require_engine(environ: Mapping[str, str] | None = None) -> None:
    problem = engine_problem(environ)
    if problem:
        raise MissingDependencyError(
            f"no Docker engine is reachable ({problem.rstrip('.')}): start Docker, or use the local "
            "runtime ('exapg up')")


def needs_no_engine(args: Sequence[str]) -> bool:
    words = [a for a in args if not a.startswith("-")]
    return bool(words) and words[0] in ENGINE_FREE


def compose_environment(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment plus what Settings resolved: the project name, and secrets
    given as *_FILE, so the compose files' ${VAR:?} find them."""
    env = dict(os.environ if base is None else base)
    env["COMPOSE_PROJECT_NAME"] = settings.compose_project_name
    secrets = {
        "POSTGRES_PASSWORD": settings.postgres_password, "API_SECRET_KEY": settings.api_secret_key,
        "GRAFANA_PASSWORD": settings.grafana_password, "EXAPG_ADMIN_PASSWORD": settings.admin_password,
    }
    for name, value in secrets.items():
        if value is not None and name in FILE_VARIABLES and not env.get(name):
            env[name] = value.get_secret_value()
    return env


def given_env_file() -> Path | None:
    env_file = os.environ.get("EXAPG_ENV_FILE")
    return Path(env_file).resolve() if env_file and Path(env_file).is_file() else None


def compose_variables(settings: Settings, directory: Path | None = None) -> dict[str, str]:
    """The variables Compose interpolates: the env file it reads (EXAPG_ENV_FILE, passed as
    --env-file, else the project directory's .env) under the process environment, which wins
    as it does in Compose. ExaPG's own preparations (the production directories) must see
    the same values, or they make directories Compose never mounts."""
    path = given_env_file() or (directory or docker_dir()) / ".env"
    values = {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}
    return {**values, **compose_environment(settings)}


@dataclass
class DockerCompose:
    settings: Settings
    profile: str = "prod"
    extras: tuple[str, ...] = ()
    directory: Path | None = None

    def files(self) -> list[Path]:
        root = self.directory or docker_dir()
        return [root / name for name in compose_files(self.profile, self.extras)]

    def argv(self, args: Sequence[str]) -> list[str]:
        command = compose_command()
        command += ["--project-name", self.settings.compose_project_name]
        env_file = given_env_file()
        if env_file:  # the same file Settings read (blue/green)
            command += ["--env-file", str(env_file)]
        for path in self.files():
            command += ["-f", str(path)]
        return [*command, *args]

    def run(self, args: Sequence[str], *, capture: bool = False, timeout: float | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run compose with `args`; output goes to the terminal unless captured."""
        argv = self.argv(args)  # validates the profile and finds Compose first
        if not needs_no_engine(args):
            require_engine()
        try:
            return subprocess.run(argv, env=compose_environment(self.settings), text=True, check=False,
                                  capture_output=capture, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise OperationTimeoutError(f"docker compose {' '.join(args)} took longer than {timeout} s") from None

    def stream(self, args: Sequence[str]) -> Iterator[str]:
        """Lines of compose's output as they come (for `logs -f`)."""
        argv = self.argv(args)
        require_engine()
        with subprocess.Popen(argv, env=compose_environment(self.settings), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
            assert proc.stdout is not None
            try:
                for line in proc.stdout:
                    yield line.rstrip("\n")
            finally:
                proc.terminate()

    def check(self, args: Sequence[str], *, timeout: float | None = None) -> str:
        result = self.run(args, capture=True, timeout=timeout)
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()
            raise CommandError(f"docker compose {' '.join(args)} failed: {last[-1] if last else 'no output'}",
                               output=result.stderr, returncode=result.returncode)
        return result.stdout


class DockerRuntime:
    """The runtime interface over Compose (modes: standalone, ha, cluster)."""

    def __init__(self, settings: Settings, progress: Progress = quiet, profile: str = "prod",
                 extras: Sequence[str] = ()) -> None:
        self.settings = settings
        self.progress = progress
        self.profile = profile
        self.extras = tuple(extras)

    def compose(self, mode: str | None = None) -> DockerCompose:
        extras = self.extras + (("ha",) if mode == "ha" else ())
        return DockerCompose(self.settings, self.profile, extras)

    def up(self, mode: Mode | None = None, workers: int | None = None, standby: bool | None = None) -> list[str]:
        config_check.require_valid(self.settings, backend="docker")  # before Compose touches anything
        if standby is not None:
            raise InvalidParameterError(
                "--standby/--no-standby is for the local runtime: with Docker the mode decides "
                "(ha has a standby, standalone and cluster have none)")
        chosen = Mode(mode or Mode.HA).value
        require_engine()
        compose = self.compose(chosen)
        services = services_for(chosen, compose.check(["config", "--services"]).split())
        require_images(compose, services, cluster=chosen == "cluster")
        actions = []
        if any(path.name == EXTRAS["prod"] for path in compose.files()):
            actions += prepare_production_dirs(compose_variables(self.settings))
        compose.check(["up", "-d", "--remove-orphans", *self._scale_args(chosen, workers), *services])
        return [*actions, f"docker compose up ({self.profile}, {chosen}): {', '.join(services)}"]

    def _scale_args(self, mode: str, workers: int | None) -> list[str]:
        if mode != "cluster":
            return []
        return ["--scale", f"worker={pool_size(workers if workers is not None else FIXED_WORKERS)}"]

    def stop(self) -> list[str]:
        self.compose().check(["stop"])
        return ["docker compose stop"]

    def down(self, volumes: bool = False) -> list[str]:
        self.compose("ha").check(["down", "--remove-orphans", *(["--volumes"] if volumes else [])])
        return ["docker compose down" + (" --volumes" if volumes else "")]

    def status(self) -> list[ServiceStatus]:
        ids = self.compose("ha").check(["ps", "-q"]).split()
        return [container_status(item) for item in inspect_containers(ids)]

    def logs(self, service: str | None, follow: bool, since: float | None, timestamps: bool) -> Iterator[str]:
        args = ["logs", "--no-color", *(["-f"] if follow else []), *(["-t"] if timestamps else [])]
        if since is not None:
            args.append(f"--since={int(since)}s")
        yield from self.compose("ha").stream([*args, *([service] if service else [])])

    def scale(self, workers: int, rebalance: bool = True) -> list[str]:
        """Scale the worker pool; on the way down, drain the highest-numbered replicas and
        remove exactly those (Compose's own choice of which to remove is not ours to trust);
        on the way up, wait for the new workers to register, then rebalance."""
        target = pool_size(workers)
        replicas = sorted(self._worker_replicas(), key=lambda c: c[0])
        drained = [cid for _, cid in replicas[target:]]
        for cid in drained:
            drain_container(cid)
            docker_command(["rm", "--force", "--volumes", cid], timeout=120)
        self.compose("cluster").check(["up", "-d", "--no-recreate", "--scale", f"worker={target}", "worker"])
        actions = [f"drained {len(drained)} worker(s)" if drained else "nothing to drain",
                   f"scalable workers: {target}"]
        if target > len(replicas):
            self.wait_for_workers(FIXED_WORKERS + target)
            actions.append(f"{FIXED_WORKERS + target} workers registered")
            if rebalance:
                actions += self.rebalance()
        return actions

    def coordinator_dsn(self) -> Dsn:
        """The coordinator through its published port on this host."""
        s = self.settings
        return Dsn("127.0.0.1", s.coordinator_port, s.postgres_db, s.postgres_user,
                   s.postgres_password.get_secret_value() if s.postgres_password else "")

    def wait_for_workers(self, count: int, timeout: float = REGISTER_TIMEOUT) -> None:
        """New replicas register themselves once healthy (exapg-worker register-loop)."""
        active = 0

        def registered() -> bool:
            nonlocal active
            with connect(self.coordinator_dsn()) as conn:
                active = sum(1 for w in citus.workers(conn) if w.active)
            if active < count:
                self.progress(f"waiting for workers to register: {active}/{count}")
            return active >= count

        if not wait_until(registered, timeout, interval=2):
            raise OperationTimeoutError(
                f"only {active} of {count} workers registered within {timeout:.0f} s: see "
                "docker compose logs worker")

    def restart(self) -> list[str]:
        """Restart the running containers in place (their mode and data stay as they are)."""
        config_check.require_valid(self.settings, backend="docker")
        self.compose("ha").check(["restart"])
        return ["docker compose restart"]

    def psql_command(self, service: str, command: str | None, interactive: bool
                     ) -> tuple[list[str], dict[str, str]]:
        """psql inside a node's container (its pgpass authenticates); pgbouncer through the
        coordinator's container, as another client of the pool."""
        require_engine()
        s = self.settings
        target = ["-h", "pgbouncer", "-p", "6432"] if service == "pgbouncer" else []
        container = "coordinator" if service == "pgbouncer" else service
        tty = [] if interactive else ["-T"]
        args = ["exec", *tty, container, "psql", *target, "-U", s.postgres_user, "-d", s.postgres_db,
                "-v", "ON_ERROR_STOP=1", *(["-c", command] if command is not None else [])]
        return self.compose("ha").argv(args), compose_environment(s)

    def credentials(self) -> dict[str, str | None]:
        """What a client needs, from the settings Compose is given (no state kept by ExaPG)."""
        s = self.settings
        password = s.postgres_password.get_secret_value() if s.postgres_password else None
        admin = s.admin_password.get_secret_value() if s.admin_password else None
        return {
            "database": s.postgres_db, "user": s.postgres_user, "password": password,
            "coordinator_url": self.coordinator_dsn().url(hide_password=False),
            "pgbouncer_url": Dsn("127.0.0.1", s.pgbouncer_port, s.postgres_db, s.postgres_user,
                                 password or "").url(hide_password=False),
            "management_url": f"http://127.0.0.1:{s.mgmt_frontend_port}/",
            "management_user": "admin",
            "management_password": admin or "generated at first start: docker compose logs management_backend",
        }

    def require_cluster(self, command: str) -> None:
        """Cluster-only commands stop with exit 2 where the coordinator has no Citus workers."""
        with connect(self.coordinator_dsn()) as conn:
            has_citus = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone()
            if not has_citus or not citus.workers(conn):
                raise InvalidParameterError(
                    f"'exapg {command}' needs cluster mode and this Docker stack's coordinator has no Citus "
                    "workers: exapg up --backend docker --mode cluster")

    def rebalance(self, wait: bool = True) -> list[str]:
        """Citus's background rebalance on the coordinator, followed to its end by default."""
        self.require_cluster("rebalance")
        with connect(self.coordinator_dsn(), statement_timeout_ms=0) as conn:
            return [citus.rebalance(conn, wait=wait, progress=self.progress)]

    def _worker_replicas(self) -> list[tuple[int, str]]:
        ids = self.compose("cluster").check(["ps", "-q", "worker"]).split()
        found = []
        for item in inspect_containers(ids):
            labels = item.get("Config", {}).get("Labels", {}) or {}
            found.append((int(labels.get("com.docker.compose.container-number", "0")), item["Id"]))
        return found


SERVICE_UID = 999  # the postgres user of exapg/postgres (the specification's `user: "999:999"`)
PROD_DEFAULTS = {"EXAPG_DATA_DIR": "/opt/exapg/data", "EXAPG_CONFIG_DIR": "/opt/exapg/config",
                 "EXAPG_LOG_DIR": "/opt/exapg/logs", "EXAPG_BACKUP_DIR": "/opt/exapg/backup"}
PROD_NODES = ("coordinator", "worker1", "worker2")
CONFIG_SOURCE = REPO_DOCKER_DIR.parent / "config" / "postgresql"


def prepare_production_dirs(environ: Mapping[str, str] | None = None) -> list[str]:
    """The host directories of docker-compose.prod.yml, made as the image needs them: data
    (0700), logs and backups owned by uid 999, the configuration copied once from config/postgresql.
    Docker would make missing ones owned by root, where PostgreSQL cannot write."""
    env = os.environ if environ is None else environ
    dirs = {name: Path(env.get(name) or default) for name, default in PROD_DEFAULTS.items()}
    private = [dirs["EXAPG_DATA_DIR"] / node for node in PROD_NODES] + [dirs["EXAPG_BACKUP_DIR"]]
    wanted = [*private, dirs["EXAPG_LOG_DIR"]]
    missing = [path for path in [*wanted, dirs["EXAPG_CONFIG_DIR"]] if not path.is_dir()]
    if missing and os.geteuid() != 0:
        raise ConfigurationError(
            f"{missing[0]} is missing and only root can make it owned by uid {SERVICE_UID}: run as root, or "
            f"install -d -o {SERVICE_UID} -g {SERVICE_UID} -m 700 {' '.join(str(p) for p in private)}")
    done = []
    for path in wanted:
        if not path.is_dir():
            path.mkdir(parents=True, mode=0o700 if path in private else 0o755)
            os.chown(path, SERVICE_UID, SERVICE_UID)
            done.append(f"made {path} (uid {SERVICE_UID})")
    config = dirs["EXAPG_CONFIG_DIR"]
    if not any(config.glob("*.conf")):
        config.mkdir(parents=True, exist_ok=True)
        for source in sorted(CONFIG_SOURCE.glob("*.conf")):
            shutil.copy2(source, config / source.name)
        done.append(f"copied the server configuration into {config}")
    return done


WORKER_SERVICES = ("worker1", "worker2", "worker")


def services_for(mode: str, available: Sequence[str]) -> list[str]:
    """Services `up` starts per mode, of those the compose files define: the workers only in
    cluster mode, the standby only in ha (its file is added for ha); monitoring and
    management whenever their files are there."""
    if mode not in ("standalone", "ha", "cluster"):
        raise InvalidParameterError(f"unknown mode {mode!r}: use standalone, ha or cluster")
    skip = set() if mode == "cluster" else set(WORKER_SERVICES)
    if mode != "ha":
        skip |= {"standby"}
    return [name for name in available if name not in skip]


def require_images(compose: DockerCompose, services: Sequence[str], *, cluster: bool) -> None:
    """ExaPG's images come from `exapg images build`, or from a registry the user pushed them
    to (EXAPG_IMAGE_PREFIX): say which is missing before Compose tries to build one without
    its wheelhouse or base. Cluster mode needs Citus inside."""
    prefix = image_prefix(compose.settings)
    model = compose.check(["config"])
    images = sorted({line.split("image:", 1)[1].strip() for line in model.splitlines()
                     if line.strip().startswith(f"image: {prefix}/")})
    missing = [name for name in images if not _image_exists(name)]
    if missing:
        hint = ("run 'exapg images build' (make images)" if prefix == DEFAULT_PREFIX else
                f"pull it ('exapg compose prod pull') or push it there ('exapg images push --to {prefix}')")
        raise MissingDependencyError(f"image {missing[0]} is not here: {hint}")
    postgres = next((name for name in images if name.startswith(f"{prefix}/postgres:")), None)
    if cluster and postgres and citus_version(postgres) == "none":
        raise MissingDependencyError(
            f"{postgres} was built without Citus, which cluster mode needs: rebuild it with a Citus source "
            "('exapg images build --citus-source DIR', or with internet access for Citus's release archive)")


DEFAULT_PREFIX = "exapg"


def image_prefix(settings: Settings) -> str:
    """Where the compose files take ExaPG's images from (EXAPG_IMAGE_PREFIX, default exapg)."""
    return compose_variables(settings).get("EXAPG_IMAGE_PREFIX") or DEFAULT_PREFIX


def _image_exists(name: str) -> bool:
    try:
        docker_command(["image", "inspect", "--format", "{{.Id}}", name], timeout=ENGINE_TIMEOUT * 3)
    except CommandError:
        return False
    return True


def citus_version(image: str) -> str:
    """The Citus version exapg/postgres was built with ('none' without)."""
    try:
        found = docker_command(["run", "--rm", "--entrypoint", "cat", image, "/usr/share/exapg/citus"], timeout=60)
    except CommandError:
        return "none"
    return found.strip() or "none"


def pool_size(workers: int) -> int:
    if workers < FIXED_WORKERS:
        raise InvalidParameterError(
            "Docker cluster mode always has worker1 and worker2 of docker-compose.yml: "
            f"--workers must be at least {FIXED_WORKERS}")
    return workers - FIXED_WORKERS


def docker_command(args: Sequence[str], *, timeout: float) -> str:
    docker = find_program("docker")
    if not docker:
        raise MissingDependencyError("the docker command is not installed")
    try:
        result = subprocess.run([docker, *args], capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise OperationTimeoutError(f"docker {args[0]} took longer than {timeout:.0f} s") from None
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()
        raise CommandError(f"docker {args[0]} failed: {last[-1] if last else 'no output'}",
                           output=result.stderr, returncode=result.returncode)
    return result.stdout


def drain_container(container_id: str) -> None:
    """Move every shard off the worker and remove it from Citus; fails before anything is lost."""
    try:
        docker_command(["exec", container_id, "exapg-worker", "drain"], timeout=3600)
    except CommandError as exc:
        raise CommandError(f"draining worker {container_id[:12]} failed, it was kept: {exc}",
                           output=exc.output, returncode=exc.returncode) from None


def inspect_containers(ids: Sequence[str]) -> list[dict]:
    if not ids:
        return []
    return list(json.loads(docker_command(["inspect", *ids], timeout=ENGINE_TIMEOUT * 3)))


def container_status(item: Mapping) -> ServiceStatus:
    """One `docker inspect` entry as a status line."""
    labels = item.get("Config", {}).get("Labels", {}) or {}
    state = item.get("State", {}) or {}
    service = labels.get("com.docker.compose.service", item.get("Name", "").lstrip("/"))
    health = (state.get("Health") or {}).get("Status")
    running = state.get("Status") == "running"
    current = {"running": ServiceState.RUNNING, "restarting": ServiceState.STARTING,
               "created": ServiceState.STARTING, "exited": ServiceState.STOPPED,
               "dead": ServiceState.FAILED}.get(state.get("Status", ""), ServiceState.UNKNOWN)
    role = ROLE_BY_SERVICE.get(service, Role.WORKER if service.startswith("worker") else Role.MONITORING)
    return ServiceStatus(
        name=item.get("Name", service).lstrip("/"), role=role, port=None, pid=state.get("Pid") or None,
        state=current, healthy=running and health in (None, "healthy"), detail=health or "",
    )
