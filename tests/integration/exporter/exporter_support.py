"""Helpers of the exporter tests: an in-process exporter on a free port, and scraping."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from exapg.exporter.collector import ReplicationCollector
from exapg.exporter.environment import ExporterConfig
from exapg.exporter.server import ExporterServer, serve
from tests.conftest import Stack, free_port


class Samples(dict):
    """One scrape: {(sample name, frozenset of labels): value}."""

    def get_value(self, name: str, **labels: str) -> float | None:
        """The value of the one sample matching `labels` (a subset), else None."""
        found = [v for (n, ls), v in self.items() if n == name and set(labels.items()) <= ls]
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
        return found[0] if found else None

    def for_server(self, server: str) -> set[str]:
        return {n for (n, ls) in self if ("server", server) in ls}


def parse(text: str) -> Samples:
    samples = Samples()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


@dataclass
class RunningExporter:
    config: ExporterConfig
    collector: ReplicationCollector
    server: ExporterServer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config.port}"

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(self.url + path, headers=headers, timeout=5)

    def scrape(self) -> Samples:
        response = self.get("/metrics")
        assert response.status_code == 200
        return parse(response.text)

    def scrape_until(self, check: Callable[[Samples], bool], timeout: float = 30) -> Samples:
        deadline = time.monotonic() + timeout
        while True:
            samples = self.scrape()
            if check(samples):
                return samples
            assert time.monotonic() < deadline, f"condition not met in {timeout}s: {samples}"
            time.sleep(0.3)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.collector.close()


def stack_env(stack: Stack, **extra: str) -> dict[str, str]:
    """The exporter's variables for a stack, as the local runtime sets them."""
    return {
        "PRIMARY_HOST": "127.0.0.1",
        "PRIMARY_PORT": str(stack.coordinator.port),
        "STANDBY_HOSTS": f"127.0.0.1:{stack.standby.port}",
        "POSTGRES_DB": stack.settings.postgres_db,
        "POSTGRES_USER": stack.settings.postgres_user,
        "POSTGRES_PASSWORD_FILE": str(stack.password_file),
        "EXPORTER_PORT": str(free_port()),
        "EXPORTER_LISTEN_ADDRESS": "127.0.0.1",
        **extra,
    }


def start(env: dict[str, str]) -> RunningExporter:
    config = ExporterConfig.from_env(env)
    collector = ReplicationCollector(config)
    server = serve(collector, config.listen_address, config.port)
    return RunningExporter(config, collector, server)


def server_label(port: int) -> str:
    return f"127.0.0.1:{port}"


def postgres_processes(datadir: Path) -> list[int]:
    """The postmaster of `datadir` and its children (backends, walreceiver, ...)."""
    postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(entry.name))
    return pids


def signal_all(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
