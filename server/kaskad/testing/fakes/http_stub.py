"""A tiny threaded HTTP server on loopback for provider stand-ins.

A stand-in subclasses :class:`ProviderServer`, implements ``handle(method,
path, headers, body) -> (status, json_body)``, checks what it receives
(auth, shape) and records every request in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ProviderServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        #: Queue of canned (status, body) or (status, body, headers) answers to return before
        #: normal handling (errors on demand).
        self.script: list[tuple] = []
        #: Seconds to wait before answering (a provider that times out).
        self.stall = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _do(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append({"method": self.command, "path": self.path, "headers": headers, "body": body})
                if outer.stall:
                    time.sleep(outer.stall)
                answer = outer.script.pop(0) if outer.script else outer.handle(self.command, self.path, headers, body)
                status, payload, extra = (*answer, {})[:3]
                data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _do

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        raise NotImplementedError

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
