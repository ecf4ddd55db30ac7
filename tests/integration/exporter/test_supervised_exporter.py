"""The replication exporter `exapg up --mode ha` runs under the supervisor, scraped live,
and the supervised programs as `exapg status --json` reports them."""

from __future__ import annotations

import importlib.util
import json
import time

import httpx
import pytest
from exporter_support import Samples, parse

from exapg.runtime.programs import postgres_exporter, prometheus

pytestmark = pytest.mark.integration


def scrape(port: int) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return parse(response.text)


def test_supervised_exporter_watches_the_pair(ha_stack):
    port = ha_stack.settings.exporter_port
    primary, standby = "coordinator", "standby"  # named as the stack names its nodes
    # Polled: a test before this one may have restarted a server of the session stack.
    deadline = time.monotonic() + 30
    while True:
        samples = scrape(port)
        ups = (samples.get_value("pg_up", server=primary, instance="primary"),
               samples.get_value("pg_up", server=standby, instance="standby"))
        if ups == (1, 1) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ups == (1, 1), samples.for_server(standby)
    assert samples.get_value("pg_replication_is_replica", server=primary, instance="primary") == 0
    assert samples.get_value("pg_replication_is_replica", server=standby, instance="standby") == 1
    # the supervised exporter watches exactly this pair: no other server
    servers = {dict(labels).get("server") for name, labels in samples if name == "pg_up"}
    assert servers == {primary, standby}


def expected_programs() -> set[str]:
    """The programs `exapg up --mode ha` supervises besides pgBouncer, where installed."""
    wanted = {"replication_exporter"}
    if postgres_exporter.binary():
        wanted.add("postgres_exporter")
    if prometheus.binary():
        wanted.add("prometheus")
    if importlib.util.find_spec("uvicorn") is not None:
        wanted.add("management_backend")
    return wanted


def status_rows(stack) -> dict[str, dict]:
    result = stack.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_status_json_lists_the_supervised_programs_running_and_healthy(ha_stack):
    wanted = expected_programs()
    deadline = time.monotonic() + 30
    while True:
        rows = status_rows(ha_stack)
        states = {name: (rows[name]["state"], rows[name]["healthy"]) for name in wanted if name in rows}
        if states == {name: ("running", True) for name in wanted} or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert states == {name: ("running", True) for name in wanted}, sorted(rows)
    exporter = rows["replication_exporter"]
    assert (exporter["role"], exporter["port"]) == ("exporter", ha_stack.settings.exporter_port)
    assert isinstance(exporter["pid"], int)
