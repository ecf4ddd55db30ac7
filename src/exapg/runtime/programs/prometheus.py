"""Prometheus for a local stack, with the same rule files and job names as Docker's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from exapg.addresses import url_host
from exapg.monitoring import prometheus_config as monitoring
from exapg.proc import find_program
from exapg.runtime.base import Program
from exapg.stack import Stack
from exapg.status import Role

NAME = "prometheus"


def binary() -> str | None:
    return find_program("prometheus", "/usr/bin/prometheus")


def program(stack: Stack) -> Program | None:
    """None when Prometheus is not installed (Debian: prometheus)."""
    found = binary()
    if found is None:
        return None
    settings = stack.settings
    paths = monitoring.state_paths(stack.root)
    host = url_host(monitoring.scrape_host(settings.listen_address))
    return Program(
        name=NAME,
        role=Role.MONITORING,
        command=[
            found, f"--config.file={paths['config']}", f"--storage.tsdb.path={paths['storage']}",
            f"--storage.tsdb.retention.time={monitoring.RETENTION}",
            f"--web.listen-address={settings.listen_address}:{settings.prometheus_port}",
            "--web.enable-lifecycle", "--log.level=warn",
        ],
        port=settings.prometheus_port,
        health_url=f"http://{host}:{settings.prometheus_port}/-/ready",
        directory=paths["storage"],
    )


def write_files(stack: Stack, targets: Mapping[str, str | Iterable[str]], *, with_exporter: bool) -> None:
    """The shared rule files and custom queries, copied where the service user reads them,
    and the configuration scraping `targets` (job -> "host:port") besides its own jobs."""
    files = monitoring.install_files(stack.user, stack.root, monitoring.monitoring_dir())
    paths = monitoring.state_paths(stack.root)
    jobs = monitoring.all_targets(stack.settings, targets, with_exporter)
    stack.user.write_file(paths["config"], monitoring.render_prometheus_config(jobs, files.get("rules")), 0o600)
    if not paths["storage"].is_dir():
        stack.user.make_dir(paths["storage"], 0o700)
