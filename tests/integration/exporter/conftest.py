"""Fixtures of the exporter tests (helpers are in exporter_support.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from exporter_support import RunningExporter, start


@pytest.fixture
def start_exporter() -> Iterator[Callable[..., RunningExporter]]:
    """Start exporters in this process; all are stopped at the end of the test."""
    running: list[RunningExporter] = []

    def starter(env: dict[str, str]) -> RunningExporter:
        running.append(start(env))
        return running[-1]

    yield starter
    for exporter in running:
        exporter.stop()
