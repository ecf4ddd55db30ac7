"""The local stack's monitoring configuration: Prometheus's scrape jobs and the shared files.

Both runtimes use the same files (`monitoring/`): the alert rules, and the custom
queries of postgres_exporter, so an alert means the same thing in both. Job names match
`monitoring/prometheus/prometheus.yml`. The programs that read this configuration are
described in runtime/programs (prometheus, postgres_exporter).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from exapg.addresses import probe_host
from exapg.proc import ServiceUser
from exapg.settings import Settings

REPO_MONITORING = Path(__file__).resolve().parents[3] / "monitoring"
RETENTION = "200h"  # as in the Compose files' --storage.tsdb.retention.time
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


def scrape_host(listen_address: str) -> str:
    """Where Prometheus reaches a local service bound per EXAPG_LISTEN_ADDRESS."""
    return probe_host(listen_address)


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
    import yaml  # here, not above: `exapg status` reads the programs of this module but writes no file

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


def state_paths(state_dir: Path) -> dict[str, Path]:
    conf = state_dir / "conf"
    return {"config": conf / "prometheus.yml", "rules": conf / "prometheus-rules",
            "queries": conf / "postgres_exporter-queries.yaml", "storage": state_dir / "data" / "prometheus"}


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
