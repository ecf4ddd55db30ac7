"""ExaPG's replication exporter, pointed at the stack's primary and standbys (ha mode)."""

from __future__ import annotations

import sys

from exapg.addresses import LOOPBACK, bind_host, probe_host, url_host
from exapg.cluster.topology import Topology
from exapg.runtime.base import Program
from exapg.stack import Stack
from exapg.status import Role

NAME = "replication_exporter"


def program(stack: Stack, topology: Topology) -> Program:
    """Each server named as the stack names its node (the exporter's `server` label), so
    alerts and panels follow a node across role changes; the password travels as a file,
    never in the supervisor's configuration."""
    settings = stack.settings
    primary = topology.coordinator
    environment = {
        "PRIMARY_HOST": LOOPBACK,
        "PRIMARY_PORT": str(primary.port),
        "PRIMARY_NAME": primary.name,
        "STANDBY_HOSTS": ",".join(f"{node.name}={LOOPBACK}:{node.port}" for node in topology.standbys),
        "POSTGRES_DB": settings.postgres_db,
        "POSTGRES_USER": settings.postgres_user,
        "POSTGRES_PASSWORD_FILE": str(stack.password_file),
        "EXPORTER_PORT": str(settings.exporter_port),
        "EXPORTER_LISTEN_ADDRESS": bind_host(settings.listen_address),
        "POSTGRES_SSLMODE": "disable",  # loopback: TLS would only cost a handshake
        "PYTHONUNBUFFERED": "1",
    }
    probe = url_host(probe_host(settings.listen_address))
    return Program(
        name=NAME,
        role=Role.EXPORTER,
        command=[sys.executable, "-m", "exapg.exporter"],
        port=settings.exporter_port,
        health_url=f"http://{probe}:{settings.exporter_port}/health",
        environment=environment,
        directory=stack.log_dir,
    )
