"""A pool on the test's database for calling the alerting services directly, and settings that let
webhooks reach the loopback test receivers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from backend.db.pool import create_pool
from backend.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The webhook receivers (receivers.py) listen on loopback, which webhooks may reach only when an
    # administrator allows it.
    return msgspec.structs.replace(settings, webhook_allow="127.0.0.1")


@pytest.fixture
async def pool(client: Any, database_url: str) -> AsyncIterator[Any]:
    # After `client`: the app has migrated the database and created the first admin.
    created = await create_pool(database_url, min_size=1, max_size=4)
    try:
        yield created
    finally:
        await created.close()
