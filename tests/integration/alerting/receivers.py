"""Real receivers on loopback for delivery tests: an HTTP server recording webhook POSTs (answering
with a scripted status per request) and a minimal SMTP server recording messages."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Webhooks:
    url: str = ""
    # Status for each request in turn; 200 once the script runs out.
    script: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)


@contextmanager
def webhook_receiver(script: list[int] | None = None) -> Iterator[Webhooks]:
    hooks = Webhooks(script=list(script or []))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                status = hooks.script.pop(0) if hooks.script else 200
                hooks.received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hooks.url = f"http://127.0.0.1:{server.server_address[1]}/celltrail-hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hooks
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    port: int = 0
    messages: list[bytes] = field(default_factory=list)
    logins: list[bytes] = field(default_factory=list)


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """Just enough ESMTP for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""
    box = Mailbox()

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, text: str) -> None:
            self.wfile.write(text.encode() + b"\r\n")

        def handle(self) -> None:
            self.reply("220 test ESMTP")
            lines: list[bytes] = []
            in_data = False
            while line := self.rfile.readline():
                if in_data:
                    if line.rstrip(b"\r\n") == b".":
                        box.messages.append(b"".join(lines))
                        lines, in_data = [], False
                        self.reply("250 queued")
                    else:
                        lines.append(line[1:] if line.startswith(b"..") else line)
                    continue
                verb = line[:4].upper()
                if verb == b"EHLO":
                    self.reply("250-test\r\n250 AUTH PLAIN")
                elif verb == b"AUTH":
                    box.logins.append(line.strip())
                    self.reply("235 accepted")
                elif verb == b"DATA":
                    in_data = True
                    self.reply("354 go on")
                elif verb == b"QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("250 ok")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
