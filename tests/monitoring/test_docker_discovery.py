"""The seed's docker_sd_configs job, run by a real Prometheus against a stand-in for the
Docker engine's API (no engine runs here): which containers become targets, at which
address, with which labels."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.docker.scratch import free_port
from tests.monitoring.promql import MONITORING

NETWORK = {"Id": "net1", "Name": "exapg_exapg_network", "Scope": "local", "Driver": "bridge",
           "Internal": False, "Labels": {"com.exapg.network": "main"}}


def container(cid: str, name: str, labels: dict[str, str], port: int) -> dict:
    return {
        "Id": cid, "Names": [f"/{name}"], "Image": "x", "State": "running", "Labels": labels,
        "Ports": [{"PrivatePort": port, "Type": "tcp"}],
        "HostConfig": {"NetworkMode": NETWORK["Name"]},
        "NetworkSettings": {"Networks": {NETWORK["Name"]: {"NetworkID": NETWORK["Id"], "IPAddress": "127.0.0.1"}}},
    }


def containers(metrics_port: int) -> list[dict]:
    database = {"com.exapg.monitor": "true", "com.exapg.service": "database"}
    return [
        container("c1", "exapg_coordinator", {**database, "com.exapg.role": "coordinator"}, 5432),
        container("c2", "exapg_worker_3", {**database, "com.exapg.role": "worker"}, 5432),
        container("c3", "exapg_postgres_exporter", {
            "com.exapg.monitor": "true", "com.exapg.service": "monitoring", "com.exapg.role": "postgres_exporter",
            "com.exapg.metrics_port": "9187", "com.exapg.scrape": "static"}, 9187),
        container("c4", "exapg_node_exporter", {
            "com.exapg.monitor": "true", "com.exapg.service": "host", "com.exapg.role": "node_exporter",
            "com.exapg.metrics_port": str(metrics_port)}, metrics_port),
        container("c5", "unrelated", {"com.exapg.metrics_port": "9100"}, 9100),
    ]


def engine_stub(metrics_port: int) -> ThreadingHTTPServer:
    class Engine(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path.endswith("/_ping"):
                payload = b"OK"
            elif path.endswith("/containers/json"):
                payload = json.dumps(containers(metrics_port)).encode()
            elif path.endswith("/networks"):
                payload = json.dumps([NETWORK]).encode()
            elif path.endswith("/metrics"):
                payload = b"exapg_stub_metric 1\n"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Api-Version", "1.41")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return None

    return ThreadingHTTPServer(("127.0.0.1", 0), Engine)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def discovery(tmp_path_factory):
    binary = shutil.which("prometheus")
    if not binary:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    root = tmp_path_factory.mktemp("sd")
    metrics = engine_stub(0)  # serves /metrics for the discovered container
    threading.Thread(target=metrics.serve_forever, daemon=True).start()
    engine = engine_stub(metrics.server_address[1])
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    config = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    config.pop("rule_files")
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "docker-containers")
    job["docker_sd_configs"][0]["host"] = f"http://127.0.0.1:{engine.server_address[1]}"
    config["scrape_configs"] = [job]
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    targets: dict = {}
    while time.monotonic() < deadline:
        try:
            targets = get_json(f"{base}/api/v1/targets?state=any")["data"]
            if targets["activeTargets"] and targets["activeTargets"][0]["health"] != "unknown":
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited: {proc.stderr.read()[-2000:]}")
        time.sleep(0.5)
    yield {"targets": targets, "metrics_port": metrics.server_address[1]}
    proc.terminate()
    proc.wait(timeout=15)
    engine.shutdown()
    metrics.shutdown()


def test_only_labelled_containers_with_a_metrics_port_are_scraped(discovery):
    active = discovery["targets"]["activeTargets"]
    assert [t["labels"]["container"] for t in active] == ["exapg_node_exporter"]
    target = active[0]
    assert target["labels"]["instance"] == f"127.0.0.1:{discovery['metrics_port']}"
    assert (target["labels"]["service"], target["labels"]["role"]) == ("host", "node_exporter")
    assert target["health"] == "up"


def test_statically_scraped_and_database_containers_are_dropped(discovery):
    dropped = {t["discoveredLabels"].get("__meta_docker_container_name")
               for t in discovery["targets"]["droppedTargets"]}
    assert {"/exapg_coordinator", "/exapg_worker_3", "/exapg_postgres_exporter", "/unrelated"} <= dropped
