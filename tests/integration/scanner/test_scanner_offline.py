"""Offline safety end to end against the real backend and database.

The backend is ``celltrail serve`` on a fresh migrated PostgreSQL database, stopped (a real outage) and
started again on the same database and port. The world (sites, people, a case, labelled bags, a packed
shipment) is built over HTTP; the labels the scanners read are the backend's own label files. Two
scanners run as ``celltrail scan`` processes with their own config directories: a courier picks the
shipment up and the manufacturing site receives it and its bags while the backend is down; the
manufacturing scanner is killed with SIGKILL right after it queued its scans. When the backend is back,
the queues are flushed, the answer to the first replayed scan is lost on the way (the scanner sends it
again with the same idempotency key), and every scan must be in the custody chain exactly once, in the
order it was made.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.integration.scanner.lossy_proxy import LossyProxy
from tests.integration.scanner.real_backend import (
    PASSWORD,
    RealBackend,
    World,
    build_world,
    packed_shipment,
)


@pytest.fixture
def backend(database_url: str, tmp_path: Path) -> Iterator[RealBackend]:
    backend = RealBackend(database_url, tmp_path)
    backend.start()
    yield backend
    backend.stop()


def _scanner_env(directory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLTRAIL_")}
    env["CELLTRAIL_SCANNER_CONFIG_DIR"] = str(directory)
    return env


def _scan(env: dict[str, str], *argv: str, stdin: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", "scan", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, events


def _login(env: dict[str, str], backend: str, username: str) -> None:
    code, _ = _scan(
        env, "login", "--backend", backend, "--username", username, "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 0


def _label(world: World, who: str, kind: str, ident: str) -> np.ndarray:
    response = world.ok(who, "GET", f"/api/v1/labels/{kind}/{ident}.png")
    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, np.uint8)


def _canvas(labels: list[np.ndarray], shown: int) -> np.ndarray:
    """The labels side by side on a desk; only the first ``shown`` of them in view."""
    height = max(label.shape[0] for label in labels) + 40
    width = sum(label.shape[1] for label in labels) + 20 * (len(labels) + 1)
    desk = np.full((height, width, 3), 90, np.uint8)
    x = 20
    for index, label in enumerate(labels):
        if index < shown:
            desk[20 : 20 + label.shape[0], x : x + label.shape[1]] = label
        x += label.shape[1] + 20
    return desk


def _receive_video(directory: Path, shipment: np.ndarray, bags: list[np.ndarray]) -> str:
    """The shipment label, then each bag joining it, then 20 s of empty desk (still running when killed)."""
    labels = [shipment, *bags]
    frames = [_canvas(labels, shown) for shown in range(1, len(labels) + 1)]
    blank = _canvas(labels, 0)
    path = directory / "receive.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (blank.shape[1], blank.shape[0]))
    for frame in frames:
        for _ in range(4):
            writer.write(frame)
    for _ in range(200):
        writer.write(blank)
    writer.release()
    return str(path)


def test_scans_made_while_the_backend_is_down_arrive_exactly_once_in_order(
    backend: RealBackend, tmp_path: Path
) -> None:
    with httpx.Client(base_url=backend.url, timeout=15) as client:
        world = build_world(client)
        coi, bags, ship = packed_shipment(world)
        shipment_label = _label(world, "coord", "shipment", ship)
        bag_labels = [_label(world, "nurse", "bag", bag) for bag in bags]
    still = tmp_path / "shipment.png"
    cv2.imwrite(str(still), _canvas([shipment_label], 1))
    video = _receive_video(tmp_path, shipment_label, bag_labels)

    with LossyProxy(backend.url) as proxy:
        courier = _scanner_env(tmp_path / "scanner-courier")
        factory = _scanner_env(tmp_path / "scanner-mfg")
        _login(courier, proxy.url, "courier1")
        _login(factory, proxy.url, "mfg")

        backend.stop()

        # Offline: the courier's pickup is saved; the exit status says "saved, not yet confirmed".
        code, events = _scan(
            courier, "--image", str(still), "--mode", "pickup", "--site", "USZ-APH", "--json",
            "--send-timeout", "1",
        )  # fmt: skip
        assert code == 5, events
        picked = [e for e in events if e["event"] == "queued"]
        assert [e["action"] for e in picked] == ["pickup"]

        # The manufacturing scanner receives the shipment and each bag, then dies (SIGKILL) right after
        # it queued them: nothing is lost.
        killed = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "scan", "--video", video, "--mode", "receive", "--json"],
            stdout=subprocess.PIPE,
            text=True,
            env=factory,
        )
        assert killed.stdout is not None
        received: list[dict[str, Any]] = []
        for line in killed.stdout:
            event = json.loads(line)
            if event["event"] == "queued":
                received.append(event)
                if len(received) == 1 + len(bags):
                    killed.send_signal(signal.SIGKILL)
                    break
        killed.wait(10)
        assert killed.returncode == -signal.SIGKILL
        assert [e["action"] for e in received] == ["receive"] * (1 + len(bags))

        made: list[dict[str, Any]] = []  # every queued scan, in the order made
        for env, queued in ((courier, picked), (factory, received)):
            code, events = _scan(env, "--status", "--json")
            assert code == 5
            pending = [e for e in events if e["event"] == "pending"]
            assert [e["idempotency_key"] for e in pending] == [e["idempotency_key"] for e in queued]
            made += pending
        # Codes as read (the Code 128 or the QR payload of a label, whichever was decoded first).
        wanted = [[ship], [ship]] + [[ship, bag] for bag in bags]
        assert len(made) == len(wanted)
        for scan, ids in zip(made, wanted, strict=True):
            assert len(scan["codes"]) == len(ids)
            assert all(ident in code for ident, code in zip(ids, scan["codes"], strict=True)), scan

        # The backend comes back on the same database and port. The answer to the first replayed scan
        # is lost on the way (the backend recorded it): the scanner sends it again with the same key
        # and the backend answers from its record instead of recording it twice.
        backend.start()
        proxy.drop_next_scan = 1
        sent: list[dict[str, Any]] = []
        for env in (courier, factory):
            code, events = _scan(env, "--flush", "--json", "--send-timeout", "20")
            assert code == 0, events
            assert events[-1]["pending"] == 0
            sent += [e for e in events if e["event"] == "sent" and e["result"] == "accepted"]
        assert [e["idempotency_key"] for e in sent] == [e["idempotency_key"] for e in made]
        keys = [e["idempotency_key"] for e in made]
        # The lost answer: sent twice, each of the others once, all in the order made.
        assert proxy.scan_attempts == [keys[0], *keys]
        for env in (courier, factory):
            code, events = _scan(env, "--status", "--json")
            assert code == 0
            assert events[0]["pending"] == 0
            assert not [e for e in events if e["event"] in ("pending", "refused")]
            assert _scan(env, "--flush", "--json")[0] == 0  # nothing left to send

    with httpx.Client(base_url=backend.url, timeout=15) as client:
        world.client = client
        timeline = world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
        verify = world.ok("coord", "GET", f"/api/v1/cases/{coi}/verify")
    # In the custody chain: each queued scan exactly once, accepted, in the order made, by its scanner.
    custody = [e for e in timeline["events"] if e["action"] in ("pickup", "receive")]
    assert [(e["action"], e["codes"]) for e in custody] == [(e["action"], e["codes"]) for e in made]
    assert all(e["outcome"] == "accepted" for e in custody)
    assert [e["site"] for e in custody] == ["USZ-APH"] + ["CTA"] * (1 + len(bags))
    assert [e["unit_ids"] for e in custody[2:]] == [[bag] for bag in bags]
    shipment = next(s for s in timeline["shipments"] if s["id"] == ship)
    assert sorted(shipment["receipt_scanned"]) == sorted(bags)
    assert verify["ok"] is True
