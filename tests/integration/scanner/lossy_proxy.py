"""A small HTTP forwarder in front of the real backend that can lose the answer to a scan.

``drop_next_scan = n``: the next ``n`` ``POST /api/v1/scans`` are forwarded and recorded by the backend,
then the connection to the scanner is closed without an answer (a reply lost on the way). When the
backend is unreachable the connection is closed without an answer too, as a dead backend would.
Every scan the backend answered is logged in ``scan_attempts`` (its idempotency key, in order).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


class LossyProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.drop_next_scan = 0
        self.scan_attempts: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                is_scan = self.command == "POST" and self.path.startswith("/api/v1/scans")
                try:
                    answer = httpx.request(
                        self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=15
                    )
                except httpx.HTTPError:
                    self.close_connection = True  # the backend is down: no answer at all
                    return
                with proxy._lock:
                    if is_scan:
                        proxy.scan_attempts.append(str(json.loads(body).get("idempotency_key")))
                    drop = is_scan and proxy.drop_next_scan > 0
                    proxy.drop_next_scan -= drop
                if drop:
                    self.close_connection = True  # recorded upstream, answer lost
                    return
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LossyProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
