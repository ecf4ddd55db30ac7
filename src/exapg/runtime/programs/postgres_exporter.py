"""postgres_exporter on the coordinator, with the same custom queries as Docker's."""

from __future__ import annotations

from exapg.addresses import url_host
from exapg.monitoring import prometheus_config as monitoring
from exapg.proc import find_program
from exapg.runtime.base import Program
from exapg.stack import LOOPBACK, Stack
from exapg.status import Role

NAME = "postgres_exporter"


def binary() -> str | None:
    return find_program("prometheus-postgres-exporter", "/usr/bin/prometheus-postgres-exporter",
                        "postgres_exporter")


def program(stack: Stack, coordinator_port: int) -> Program | None:
    """None when it is not installed (Debian: prometheus-postgres-exporter). The password is
    read from the stack's password file (DATA_SOURCE_PASS_FILE), never from argv."""
    found = binary()
    if found is None:
        return None
    settings = stack.settings
    host = url_host(monitoring.scrape_host(settings.listen_address))
    environment = {
        "DATA_SOURCE_URI": f"{LOOPBACK}:{coordinator_port}/{settings.postgres_db}?{monitoring.EXPORTER_URI_OPTIONS}",
        "DATA_SOURCE_USER": settings.postgres_user,
        "DATA_SOURCE_PASS_FILE": str(stack.password_file),
    }
    if (monitoring.monitoring_dir() / "postgres_exporter" / "queries.yaml").is_file():
        environment["PG_EXPORTER_EXTEND_QUERY_PATH"] = str(monitoring.state_paths(stack.root)["queries"])
    return Program(
        name=NAME,
        role=Role.EXPORTER,
        command=[found, f"--web.listen-address={settings.listen_address}:{settings.postgres_exporter_port}",
                 "--log.level=warn"],
        port=settings.postgres_exporter_port,
        health_url=f"http://{host}:{settings.postgres_exporter_port}/",
        environment=environment,
    )
