"""Real loopback receivers for delivery tests: a scriptable webhook server and an SMTP server."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hit:
    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """``script`` holds one (status, headers, delay_s) per request; the last one repeats."""

    script: list[tuple[int, dict[str, str], float]] = field(default_factory=lambda: [(200, {}, 0.0)])
    hits: list[Hit] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookReceiver:
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                n = len(recv.hits)
                recv.hits.append(Hit(time.monotonic(), dict(self.headers.items()), body))
                status, headers, delay = recv.script[min(n, len(recv.script) - 1)]
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up (timeout)
                    pass

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-token"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
