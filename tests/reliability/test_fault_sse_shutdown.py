"""Stopping the backend while coordinators watch the live stream: `celltrail serve` ends every open
stream as its shutdown begins and exits at once, instead of waiting for each stream's next keep-alive
(issue 20, finding 11). The client sees its response end and reconnects with Last-Event-ID."""

from __future__ import annotations

import http.client
import json
import signal
import time
import uuid

from bench.stack import ADMIN_PASSWORD, Celltrail

# Well under the stream's keep-alive interval, which is what the server waited for before.
PROMPT_EXIT_SECONDS = 5.0


def test_sigterm_ends_open_streams_and_the_server_exits_at_once(tmp_path, database_url, mqtt_broker):
    celltrail = Celltrail(
        tmp_path, database_url, mqtt_broker, bridge_password="unused-" + uuid.uuid4().hex, client_id="sse"
    )
    celltrail.start_backend()
    process = celltrail.processes[-1]
    streams: list[http.client.HTTPConnection] = []
    try:
        login = celltrail.post("/api/v1/auth/login", {"username": "admin", "password": ADMIN_PASSWORD})
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", celltrail.port, timeout=10)
            conn.request("GET", "/api/v1/stream", headers={"Authorization": f"Bearer {login['token']}"})
            response = conn.getresponse()
            assert response.status == 200
            assert response.readline().startswith(b": celltrail live")
            streams.append(conn)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        for conn in streams:
            assert conn.sock is not None
            # The rest of the response: it ends (chunked terminator) rather than hanging.
            rest = conn.sock.makefile("rb").read()
            assert b"0\r\n\r\n" in rest or rest == b"", rest[-200:]
        process.wait(PROMPT_EXIT_SECONDS * 2)
        elapsed = time.monotonic() - started
    finally:
        for conn in streams:
            conn.close()
        celltrail.stop()
    # uvicorn re-raises the signal it handled once it has shut down gracefully.
    assert process.returncode in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()[-2000:]
    print(json.dumps({"seconds_to_exit": round(elapsed, 2)}))
    assert elapsed < PROMPT_EXIT_SECONDS, json.dumps({"seconds_to_exit": elapsed})
