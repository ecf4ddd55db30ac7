"""Prometheus and postgres_exporter under the local runtime's supervisor.

Both use the same files as Docker (`monitoring/`): the alert rules, and the custom
queries of postgres_exporter, so an alert means the same thing in both runtimes. Job
names match `monitoring/prometheus/prometheus.yml`. A program whose binary is not
installed is left out (Debian: `prometheus`, `prometheus-postgres-exporter`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from exapg.proc import ServiceUser
from exapg.runtime.base import Program
from exapg.settings import Settings
from exapg.status import Role

REPO_MONITORING = Path(__file__).resolve().parents[3] / "monitoring"
RETENTION = "200h"  # the seed's --storage.tsdb.retention.time
SCRAPE_INTERVAL = "15s"
# Extra URI parameters are sent as session settings: the Citus queries of queries.yaml
# give up on a worker that does not answer within 2 s instead of Citus's default 30 s
# (which would outlast Prometheus's scrape timeout). Same string in the monitoring compose file.
EXPORTER_URI_OPTIONS = "sslmode=disable&citus.node_connection_timeout=2000"
# It sets instance="primary"|"standby" (the configured role, stable across a promotion)
# and server itself; the alert rules and dashboards select on both.
HONOR_LABELS = {"replication_exporter"}


def monitoring_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("EXAPG_MONITORING_DIR") or REPO_MONITORING)


def find_binary(*candidates: str) -> str | None:
    for name in candidates:
        found = shutil.which(name) or (name if Path(name).is_absolute() and os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


def prometheus_binary() -> str | None:
    return find_binary("prometheus", "/usr/bin/prometheus")


def postgres_exporter_binary() -> str | None:
    return find_binary("prometheus-postgres-exporter", "/usr/bin/prometheus-postgres-exporter",
                       "postgres_exporter")


def scrape_host(listen_address: str) -> str:
    return "127.0.0.1" if listen_address in ("0.0.0.0", "::", "*", "") else listen_address  # noqa: S104


def _as_list(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def scrape_jobs(targets: Mapping[str, str | Iterable[str]]) -> list[dict[str, object]]:
    """One static job per entry of `targets` (job name -> "host:port" or a list of them)."""
    jobs: list[dict[str, object]] = []
    for job, addresses in targets.items():
        entry: dict[str, object] = {"job_name": job, "static_configs": [{"targets": _as_list(addresses)}]}
        if job in HONOR_LABELS:
            entry["honor_labels"] = True
        jobs.append(entry)
    return jobs


def render_prometheus_config(targets: Mapping[str, str | Iterable[str]], rules_dir: Path | None) -> str:
    config: dict[str, object] = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL,
                   "scrape_timeout": "10s"},
        "scrape_configs": scrape_jobs(targets),
    }
    if rules_dir is not None and rules_dir.is_dir():
        config["rule_files"] = [str(rules_dir / "*.yml")]
    header = "# Written by ExaPG at every 'exapg up' (local runtime); edit monitoring/ instead.\n"
    return header + yaml.safe_dump(config, sort_keys=False)


def all_targets(settings: Settings, targets: Mapping[str, str | Iterable[str]], with_exporter: bool
                ) -> dict[str, str | Iterable[str]]:
    host = scrape_host(settings.listen_address)
    jobs: dict[str, str | Iterable[str]] = {"prometheus": f"{host}:{settings.prometheus_port}"}
    if with_exporter:
        jobs["postgres_exporter"] = f"{host}:{settings.postgres_exporter_port}"
    jobs.update(targets)
    return jobs


def prometheus_program(binary: str, *, settings: Settings, config: Path, storage: Path) -> Program:
    host = scrape_host(settings.listen_address)
    return Program(
        name="prometheus",
        role=Role.MONITORING,
        command=[
            binary, f"--config.file={config}", f"--storage.tsdb.path={storage}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address={settings.listen_address}:{settings.prometheus_port}",
            "--web.enable-lifecycle", "--log.level=warn",
        ],
        port=settings.prometheus_port,
        health_url=f"http://{host}:{settings.prometheus_port}/-/ready",
        directory=storage,
    )


def postgres_exporter_program(binary: str, *, settings: Settings, password_file: Path,
                              coordinator_port: int, queries: Path | None) -> Program:
    """The password is read from `password_file` (DATA_SOURCE_PASS_FILE), never from argv."""
    host = scrape_host(settings.listen_address)
    environment = {
        "DATA_SOURCE_URI": f"127.0.0.1:{coordinator_port}/{settings.postgres_db}?{EXPORTER_URI_OPTIONS}",
        "DATA_SOURCE_USER": settings.postgres_user,
        "DATA_SOURCE_PASS_FILE": str(password_file),
    }
    if queries is not None:
        environment["PG_EXPORTER_EXTEND_QUERY_PATH"] = str(queries)
    return Program(
        name="postgres_exporter",
        role=Role.EXPORTER,
        command=[binary, f"--web.listen-address={settings.listen_address}:{settings.postgres_exporter_port}",
                 "--log.level=warn"],
        port=settings.postgres_exporter_port,
        health_url=f"http://{host}:{settings.postgres_exporter_port}/",
        environment=environment,
    )


def monitoring_programs(
    *,
    settings: Settings,
    state_dir: Path,
    password_file: Path,
    coordinator_port: int,
    targets: dict,
    write_files: bool = True,
) -> list[Program]:
    """Prometheus and postgres_exporter for a local stack, each only when installed.

    `targets` maps further scrape jobs to "host:port" (or lists), for example
    {"replication_exporter": "127.0.0.1:9188"}. The rule files and custom queries are
    copied into `state_dir/conf` (the service user may not read the source tree);
    Prometheus stores its data in `state_dir/data/prometheus`. `write_files=False`
    only describes the programs (for status), touching no file.
    """
    exporter, prometheus = postgres_exporter_binary(), prometheus_binary()
    if not exporter and not prometheus:
        return []
    paths = state_paths(state_dir)
    if write_files:
        _write_files(settings, state_dir, targets, with_exporter=bool(exporter))
    programs: list[Program] = []
    if exporter:
        programs.append(postgres_exporter_program(
            exporter, settings=settings, password_file=password_file,
            coordinator_port=coordinator_port,
            queries=paths["queries"] if (monitoring_dir() / "postgres_exporter" / "queries.yaml").is_file() else None,
        ))
    if prometheus:
        programs.append(prometheus_program(prometheus, settings=settings, config=paths["config"],
                                           storage=paths["storage"]))
    return programs


def state_paths(state_dir: Path) -> dict[str, Path]:
    conf = state_dir / "conf"
    return {"config": conf / "prometheus.yml", "rules": conf / "prometheus-rules",
            "queries": conf / "postgres_exporter-queries.yaml", "storage": state_dir / "data" / "prometheus"}


def _write_files(settings: Settings, state_dir: Path, targets: Mapping[str, str | Iterable[str]], *,
                 with_exporter: bool) -> None:
    user = ServiceUser.resolve(settings.service_user)
    files = install_files(user, state_dir, monitoring_dir())
    paths = state_paths(state_dir)
    jobs = all_targets(settings, targets, with_exporter)
    user.write_file(paths["config"], render_prometheus_config(jobs, files.get("rules")), 0o600)
    if not paths["storage"].is_dir():
        user.make_dir(paths["storage"], 0o700)


def install_files(user: ServiceUser, state_dir: Path, source: Path) -> dict[str, Path]:
    """Copy the shared rule files and custom queries where the service user can read them."""
    conf = state_dir / "conf"
    if not conf.is_dir():  # the runtime's own directory: created here only if missing
        user.make_dir(conf, 0o700)
    installed: dict[str, Path] = {}
    rules = source / "prometheus" / "rules"
    if rules.is_dir():
        target = user.make_dir(state_paths(state_dir)["rules"], 0o700)
        for old in target.glob("*.yml"):
            old.unlink()
        for rule_file in sorted(rules.glob("*.yml")):
            user.write_file(target / rule_file.name, rule_file.read_text(encoding="utf-8"), 0o600)
        installed["rules"] = target
    queries = source / "postgres_exporter" / "queries.yaml"
    if queries.is_file():
        installed["queries"] = state_paths(state_dir)["queries"]
        user.write_file(installed["queries"], queries.read_text(encoding="utf-8"), 0o600)
    return installed
