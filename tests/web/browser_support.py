"""A real backend process and Debian's Chromium for the browser tests, a label image turned into the
camera's video, signing in as a person at phone or desktop size, and axe-core's accessibility check run
from the copy a pinned Python package ships (nothing is downloaded when the tests run)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
from playwright.async_api import Browser, BrowserContext, Page, expect

from backend.embedded.ports import free_port
from tests.integration.journey import PASSWORD

CHROMIUM = "/usr/bin/chromium"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 360, "height": 740}
TIMEOUT_MS = 30_000
# axe-core's rule tags for WCAG 2.0, 2.1 and 2.2 at levels A and AA.
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


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


async def launch(chromium: Any, video: Path | None = None) -> Browser:
    browser: Browser = await chromium.launch(
        executable_path=CHROMIUM, args=chromium_args(video), headless=True
    )
    return browser


async def signed_in(
    browser: Browser, server: str, username: str, phone: bool = False, **options: Any
) -> tuple[BrowserContext, Page]:
    if phone:
        context = await browser.new_context(
            base_url=server, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2, **options
        )
    else:
        context = await browser.new_context(base_url=server, viewport=DESKTOP, **options)
    await context.grant_permissions(["camera"], origin=server)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await page.goto("/")
    await expect(page).to_have_url(f"{server}/login?next=/")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("who")).to_contain_text(username.title())
    return context, page


async def no_horizontal_overflow(page: Page) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow} px wider than the phone"


def axe_source() -> str:
    """axe-core as bundled by the pinned axe-playwright-python package."""
    return (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


async def axe_violations(page: Page, impacts: tuple[str, ...] = ("critical", "serious")) -> list[str]:
    """The page's WCAG 2.2 AA violations of the given impacts, one line each. The page's context must
    be opened with bypass_csp=True: the pages allow no script but their own."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=axe_source())
    results = await page.evaluate(
        "async (tags) => await axe.run(document, "
        "{runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_22_AA,
    )
    found = []
    for violation in results["violations"]:
        if violation.get("impact") in impacts:
            targets = [" ".join(map(str, node["target"])) for node in violation["nodes"][:5]]
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} — {targets}")
    return found
