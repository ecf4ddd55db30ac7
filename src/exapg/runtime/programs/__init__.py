"""The daemons a local stack keeps under its process supervisor, one module each.

Each module has `program(stack, ...)`, which only describes the program (no file, no
database: `status` uses it too), and, where the program reads files, `write_files`,
which `up` calls before starting or reloading it. Adding a daemon is one module here
and one line in `for_topology`.
"""

from __future__ import annotations

from dataclasses import replace

from exapg.addresses import url_host
from exapg.cluster.topology import Topology
from exapg.credentials import Secrets
from exapg.monitoring import prometheus_config as monitoring
from exapg.runtime.base import Program
from exapg.runtime.programs import (
    management_api,
    pgbouncer,
    postgres_exporter,
    prometheus,
    replication_exporter,
)
from exapg.stack import Stack


def for_topology(stack: Stack, topology: Topology) -> list[Program]:
    """Every supervised daemon of this topology, in start order, each carrying the stack's
    mark in its environment."""
    found = [pgbouncer.program(stack, topology.coordinator)]
    if topology.standbys:
        found.append(replication_exporter.program(stack, topology))
    found.append(management_api.program(stack))
    found += [p for p in (postgres_exporter.program(stack, topology.coordinator.port),
                          prometheus.program(stack)) if p is not None]
    key, value = stack.marker.split("=", 1)
    return [replace(p, environment={**p.environment, key: value}) for p in found]


def write_files(stack: Stack, topology: Topology, secrets: Secrets) -> None:
    """Every file the programs of this topology read, (re)written."""
    pgbouncer.write_files(stack, topology.coordinator, secrets)
    if prometheus.binary() is None and postgres_exporter.binary() is None:
        return
    targets: dict[str, str] = {}
    if topology.standbys:
        host = url_host(monitoring.scrape_host(stack.settings.listen_address))
        targets[replication_exporter.NAME] = f"{host}:{stack.settings.exporter_port}"
    prometheus.write_files(stack, targets, with_exporter=postgres_exporter.binary() is not None)
