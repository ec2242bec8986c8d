"""The controller's HTTP port: /metrics, /healthz (alive), /readyz (Redis
and the Kubernetes API reachable, and, when leading, caches synced and
their watches working)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trainconductor_controller import metrics


@dataclass
class Readiness:
    redis: bool = False
    kubernetes: bool = False
    leading: bool = False
    synced: bool = False
    # The resources whose watch fails now: their cache grows stale.
    failing_watches: Callable[[], list[str]] = field(default=lambda: [])

    def problems(self) -> list[str]:
        found = []
        if not self.redis:
            found.append("redis unreachable")
        if not self.kubernetes:
            found.append("kubernetes API unreachable")
        if self.leading and not self.synced:
            found.append("caches not synced")
        elif self.leading:
            found += [f"watch of {resource} failing" for resource in self.failing_watches()]
        return found


class HealthServer:
    """Serves the port on a thread of its own, from `start()` on; the port
    is bound at construction."""

    def __init__(self, port: int, readiness: Readiness, host: str = "0.0.0.0") -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(readiness))
        self._server.daemon_threads = True

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="http", daemon=True).start()


def _handler(readiness: Readiness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._reply(200, b"ok\n")
            elif self.path == "/readyz":
                problems = readiness.problems()
                body = ("; ".join(problems) if problems else "ok") + "\n"
                self._reply(503 if problems else 200, body.encode())
            else:
                self._reply(404, b"not found\n")

        def _reply(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would drown the log

    return Handler
