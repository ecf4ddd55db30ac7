"""Chart series: from Prometheus when it answers, otherwise from the in-process sampler.

Each series falls back on its own: a Prometheus without postgres_exporter still gives
way to the sampler for the PostgreSQL series.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from exapg.api.services.sampler import Sample, Sampler

HTTP_TIMEOUT = 2.0
DOWN_BACKOFF = 30.0  # after a failed request, skip Prometheus for this long


@dataclass(frozen=True)
class SeriesDef:
    name: str
    unit: str
    promql: str  # {db} is replaced by the database name
    attribute: str  # field of Sample


SERIES = (
    SeriesDef(
        "tps",
        "1/s",
        'sum(rate(pg_stat_database_xact_commit{{datname="{db}"}}[1m])) + '
        'sum(rate(pg_stat_database_xact_rollback{{datname="{db}"}}[1m]))',
        "tps",
    ),
    SeriesDef(
        "connections", "count", 'sum(pg_stat_activity_count{{datname="{db}"}})', "connections"
    ),
    SeriesDef(
        "active_connections",
        "count",
        'sum(pg_stat_activity_count{{datname="{db}",state="active"}})',
        "active",
    ),
    SeriesDef(
        "cache_hit_ratio",
        "ratio",
        'sum(rate(pg_stat_database_blks_hit{{datname="{db}"}}[5m])) / '
        '(sum(rate(pg_stat_database_blks_hit{{datname="{db}"}}[5m])) + '
        'sum(rate(pg_stat_database_blks_read{{datname="{db}"}}[5m])))',
        "cache_hit_ratio",
    ),
    SeriesDef(
        "replication_lag_seconds",
        "s",
        "max(pg_replication_lag_seconds)",
        "replication_lag_seconds",
    ),
)


@dataclass(frozen=True)
class Series:
    name: str
    unit: str
    source: str  # "prometheus" or "sampler"
    points: Sequence[tuple[float, float | None]]


class Prometheus:
    def __init__(self, url: str | None) -> None:
        self.url = url.rstrip("/") if url else None
        self._down_until = 0.0

    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> list[tuple[float, float]] | None:
        """Points of the first result series; None when Prometheus is absent or has no data."""
        if self.url is None or time.monotonic() < self._down_until:
            return None
        try:
            answer = httpx.get(
                f"{self.url}/api/v1/query_range",
                params={"query": promql, "start": start, "end": end, "step": step},
                timeout=HTTP_TIMEOUT,
            )
            answer.raise_for_status()
            result = answer.json()["data"]["result"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            self._down_until = time.monotonic() + DOWN_BACKOFF
            return None
        if not result:
            return None
        return [(float(t), _number(v)) for t, v in result[0]["values"]]


def _number(value: str) -> float:
    number = float(value)
    return 0.0 if number != number else number  # NaN (0/0 ratios) as 0


def collect(
    *,
    prometheus: Prometheus,
    sampler: Sampler,
    database: str,
    minutes: int,
    now: float | None = None,
) -> list[Series]:
    end = now or time.time()
    start = end - minutes * 60
    step = max(5.0, minutes * 60 / 240)
    samples = sampler.history(start)
    return [_one(d, prometheus, samples, database, start, end, step) for d in SERIES]


def _one(
    definition: SeriesDef,
    prometheus: Prometheus,
    samples: list[Sample],
    database: str,
    start: float,
    end: float,
    step: float,
) -> Series:
    points = prometheus.query_range(definition.promql.format(db=database), start, end, step)
    if points is not None:
        return Series(definition.name, definition.unit, "prometheus", points)
    own = [(s.at, getattr(s, definition.attribute)) for s in samples]
    return Series(definition.name, definition.unit, "sampler", own)
