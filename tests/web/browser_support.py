"""A real backend process and Debian's Chromium for the browser tests, a label image turned into the
camera's video, and screenshots saved as artifacts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np

from backend.embedded.ports import free_port

CHROMIUM = "/usr/bin/chromium"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 360, "height": 740}


@contextmanager
def backend_process(database_url: str, log_path: Path, mqtt_url: str | None = None) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "CELLTRAIL_DATABASE_URL": database_url,
        "CELLTRAIL_PORT": str(port),
        "CELLTRAIL_ADMIN_PASSWORD": "admin-password-for-tests",
        "CELLTRAIL_LOG_FORMAT": "json",
        "CELLTRAIL_HOUSEKEEPING_SECONDS": "2",
    }
    if mqtt_url:
        env["CELLTRAIL_MQTT_URL"] = mqtt_url
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        try:
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 503):
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "backend did not start"
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def label_video(png: bytes, path: Path, width: int = 1280, height: int = 720) -> Path:
    """The label, centred on white as a phone would frame it, as a Y4M file Chromium plays as the camera."""
    label = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert label is not None
    scale = min((width * 0.8) / label.shape[1], (height * 0.8) / label.shape[0])
    label = cv2.resize(label, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), 255, dtype=np.uint8)
    top, left = (height - label.shape[0]) // 2, (width - label.shape[1]) // 2
    frame[top : top + label.shape[0], left : left + label.shape[1]] = label
    yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(10):
            out.write(b"FRAME\n")
            out.write(yuv.tobytes())
    return path


def chromium_args(video: Path | None = None) -> list[str]:
    args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
    if video is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ]
    return args
