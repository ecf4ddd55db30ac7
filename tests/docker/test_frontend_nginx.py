"""The front end image's nginx configuration, served by a real nginx: static files,
the single-page fallback, security headers and /api forwarded to the backend."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from exapg.api.core.web import APP_CSP
from tests.docker.scratch import as_service_user, free_port, give, scratch_dir

CONF = Path(__file__).resolve().parents[2] / "docker" / "nginx" / "frontend.conf"


class Backend(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f'{{"path": "{self.path}"}}'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


def site_config(root: Path, port: int, backend_port: int) -> Path:
    """frontend.conf with this machine's port, web root and backend address."""
    text = CONF.read_text()
    text = text.replace("listen 3000;", f"listen 127.0.0.1:{port};")
    text = text.replace("root /usr/share/nginx/html;", f"root {root / 'html'};")
    text = text.replace("http://management_backend:8000", f"http://127.0.0.1:{backend_port}")
    main = root / "nginx.conf"
    main.write_text(
        f"pid {root}/nginx.pid;\nerror_log {root}/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n client_body_temp_path {root}/tmp;\n proxy_temp_path {root}/tmp;\n"
        f" fastcgi_temp_path {root}/tmp;\n uwsgi_temp_path {root}/tmp;\n scgi_temp_path {root}/tmp;\n"
        f" include /etc/nginx/mime.types;\n{text}\n}}\n")
    return main


def get(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not nginx:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    root = scratch_dir(tmp_path_factory)
    (root / "html" / "assets").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "html" / "index.html").write_text("<!doctype html><title>ExaPG</title>")
    (root / "html" / "assets" / "app.js").write_text("console.log('exapg')")
    backend = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    port = free_port()
    main = site_config(root, port, backend.server_address[1])
    give(root)
    proc = subprocess.Popen([nginx, "-c", str(main), "-p", str(root), "-g", "daemon off;"],
                            stderr=subprocess.PIPE, text=True, **as_service_user())
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            get(base + "/")
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"nginx exited: {proc.stderr.read()}")
            time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait(timeout=10)
    backend.shutdown()


def test_index_and_assets(served):
    status, headers, body = get(served + "/")
    assert status == 200 and "<title>ExaPG</title>" in body
    status, headers, _ = get(served + "/assets/app.js")
    assert status == 200 and "immutable" in headers.get("Cache-Control", "")


def test_client_side_routes_fall_back_to_index(served):
    status, _, body = get(served + "/cluster/nodes")
    assert status == 200 and "<title>ExaPG</title>" in body


def test_api_is_forwarded_to_the_backend(served):
    status, headers, body = get(served + "/api/health?x=1")
    assert status == 200 and body == '{"path": "/api/health?x=1"}'
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["/", "/assets/app.js", "/cluster/nodes"])
def test_security_headers(served, path):
    _, headers, _ = get(served + path)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Security-Policy"] == APP_CSP  # the policy the backend sends in local mode
    assert "nginx/" not in headers.get("Server", "")
