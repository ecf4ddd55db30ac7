"""HTTP: /metrics (Prometheus text, or OpenMetrics when the scraper asks) and /health.

/health answers 200 whenever the exporter itself works, even with every database
down (the body says which): an orchestrator must not restart the exporter over a
database outage, which the exporter is there to report.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exapg.exporter.collector import ReplicationCollector

log = logging.getLogger("exapg.exporter")

INDEX = b"""<html><head><title>ExaPG replication exporter</title></head><body>
<h1>ExaPG replication exporter</h1><p><a href="/metrics">/metrics</a> <a href="/health">/health</a></p>
</body></html>"""


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], collector: ReplicationCollector,
        registry: CollectorRegistry,
    ) -> None:
        self.collector = collector
        self.registry = registry
        self.started = time.time()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def health(self) -> dict[str, object]:
        last = self.collector.last
        return {
            "status": "ok",
            "uptime_seconds": round(time.time() - self.started, 3),
            "last_scrape": None if last is None else {
                "finished_at": last.finished_at, "duration_seconds": round(last.duration, 6),
            },
            "servers": last.servers if last else [
                {"server": t.server, "instance": t.instance, "role": None, "timeline": None,
                 "up": None, "error": t.last_error}
                for t in self.collector.targets
            ],
        }


class _Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"  # keep-alive: Prometheus reuses its connection
    # Headers and body go out in two writes; with Nagle on, the body waits for the
    # client's delayed ACK of the headers (40 ms on Linux) on a kept-alive connection.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, content_type, encoder(self.server.registry))
        elif path == "/health":
            body = json.dumps(self.server.health()).encode()
            self._send(200, "application/json", body)
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", INDEX)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def serve(collector: ReplicationCollector, host: str, port: int) -> ExporterServer:
    """Bind and serve in a background thread; the caller owns shutdown()."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server = ExporterServer((host, port), collector, registry)
    threading.Thread(target=server.serve_forever, name="exporter-http", daemon=True).start()
    return server
