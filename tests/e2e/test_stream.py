"""Live events over SSE from a real backend process: a scan appears on the stream, and a client that
reconnects with Last-Event-ID gets what it missed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from backend.embedded.ports import free_port
from tests.integration.journey import build_world


@pytest.fixture
def backend_url(database_url, tmp_path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "CELLTRAIL_DATABASE_URL": database_url,
        "CELLTRAIL_PORT": str(port),
        "CELLTRAIL_ADMIN_PASSWORD": "admin-password-for-tests",
        "CELLTRAIL_LOG_FORMAT": "json",
    }
    log = (tmp_path / "backend.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 503):
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (tmp_path / "backend.log").read_text()
        assert time.monotonic() < deadline, "backend did not start"
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(15)


async def _events(client: httpx.AsyncClient, headers: dict[str, str]) -> AsyncIterator[tuple[str, dict]]:
    async with client.stream("GET", "/api/v1/stream", headers=headers, timeout=None) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id = ""
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                yield event_id, json.loads(line[6:])


async def test_scan_is_streamed_live_and_a_reconnect_resumes(backend_url):
    async with httpx.AsyncClient(base_url=backend_url) as client:
        world = await build_world(client)
        coi = await world.new_case()
        unit = await world.unit("nurse", coi, "APH", "USZ-APH")
        watcher = world.headers["coord"]

        received: list[tuple[str, dict]] = []
        connected = asyncio.Event()

        async def listen() -> None:
            async for item in _events(client, watcher):
                received.append(item)
                if item[1].get("action") == "label":
                    return

        async def ready_then_scan() -> None:
            # The stream starts "from now": give it a moment to subscribe, then act.
            await asyncio.sleep(0.5)
            connected.set()
            await world.scan_ok("nurse", "label", "USZ-APH", unit)

        await asyncio.wait_for(asyncio.gather(listen(), ready_then_scan()), 15)
        last_id, payload = received[-1]
        assert payload["coi"] == coi
        assert payload["outcome"] == "accepted"

        # Missed while disconnected: a refused scan and its alert; resume from the last id seen.
        await world.scan("courier1", "pickup", "USZ-APH", "SHP-2026-000999", key=str(uuid.uuid4()))
        await world.scan("nurse", "store", "USZ-APH", unit, storage_location="shelf")
        resumed: list[dict] = []

        async def resume() -> None:
            async for _id, item in _events(client, {**watcher, "Last-Event-ID": last_id}):
                resumed.append(item)
                if item.get("kind") == "event" and item.get("outcome") == "refused":
                    return

        await asyncio.wait_for(resume(), 15)
        # The unknown shipment's alert (no case), then the refused store's alert and its refused event.
        assert [(r["kind"], r.get("alert_kind"), r.get("coi")) for r in resumed] == [
            ("alert", "refused_step", None),
            ("alert", "refused_step", coi),
            ("event", None, coi),
        ]
        assert resumed[-1]["refusal"] == "out_of_order"
