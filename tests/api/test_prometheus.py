"""Chart series from a real Prometheus scraping a real postgres_exporter of the stack."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from exapg.api.app import create_app
from exapg.postgres.conn import connect
from tests.conftest import free_port

pytestmark = pytest.mark.integration
EXPORTER = shutil.which("prometheus-postgres-exporter") or shutil.which("postgres_exporter")
PROMETHEUS = shutil.which("prometheus")


def wait_for(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def has_series(url: str, query: str) -> bool:
    try:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(answer.get("data", {}).get("result"))


@pytest.fixture(scope="module")
def prometheus(ha_stack):
    if not (EXPORTER and PROMETHEUS):
        pytest.fail("Prometheus tests need: apt-get install prometheus prometheus-postgres-exporter")
    dsn = ha_stack.coordinator
    workdir = Path(tempfile.mkdtemp(prefix="exapg-prom-"))
    exporter_port, prometheus_port = free_port(), free_port()
    (workdir / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: postgres\n    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
    )
    env = {"DATA_SOURCE_NAME": f"postgresql://{dsn.user}:{dsn.password}@127.0.0.1:{dsn.port}/"
                               f"{dsn.dbname}?sslmode=disable",
           "PATH": "/usr/bin:/bin"}
    processes = [
        subprocess.Popen([EXPORTER, f"--web.listen-address=127.0.0.1:{exporter_port}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}",
                          f"--storage.tsdb.path={workdir / 'data'}",
                          f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    url = f"http://127.0.0.1:{prometheus_port}"
    try:
        assert wait_for(lambda: has_series(url, "pg_stat_activity_count")), "no scrape in 30 s"
        yield url
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)
        shutil.rmtree(workdir, ignore_errors=True)


def test_series_come_from_prometheus_when_it_has_them(ha_stack, admin_token, prometheus):
    """The token comes from the running API (same key): logins through TestClient all come
    from one address, which the fuzz test may already have rate limited."""
    env = {**ha_stack.env, "EXAPG_PROMETHEUS_URL": prometheus}
    token = admin_token
    with TestClient(create_app(ha_stack.settings, environ=env)) as client:
        with connect(ha_stack.coordinator) as conn:  # load for a rate to show
            for _ in range(200):
                conn.execute("SELECT 1")
        assert wait_for(lambda: has_series(
            prometheus, f'rate(pg_stat_database_xact_commit{{datname="{ha_stack.settings.postgres_db}"}}[1m])'))
        body = client.get("/api/dashboard/timeseries", params={"minutes": 5},
                          headers={"Authorization": f"Bearer {token}"}).json()
    series = {s["name"]: s for s in body["series"]}
    assert series["connections"]["source"] == "prometheus"
    assert series["tps"]["source"] == "prometheus"
    assert series["connections"]["points"] and all(v >= 1 for _, v in series["connections"]["points"])
    # no replication exporter in this Prometheus: that series falls back on its own
    assert series["replication_lag_seconds"]["source"] == "sampler"
