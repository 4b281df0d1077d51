"""Fixtures of the browser tests: a real backend process, its HTTP client, the journey's world of sites
and people, Playwright's Chromium and the folder for screenshots."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright

from tests.integration.journey import World, build_world
from tests.web.browser_support import backend_process


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    with backend_process(database_url, tmp_path / "backend.log") as url:
        yield url


@pytest.fixture
async def api(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        yield client


@pytest.fixture
async def world(api: httpx.AsyncClient) -> World:
    return await build_world(api)


@pytest.fixture
def shots(artifacts_dir: Path) -> Path:
    path = artifacts_dir / "web"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    async with async_playwright() as playwright:
        yield playwright.chromium
