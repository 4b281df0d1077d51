"""A pool on the test's database for calling the planning services directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from backend.db.pool import create_pool


@pytest.fixture
async def pool(client: Any, database_url: str) -> AsyncIterator[Any]:
    # After `client`: the app has migrated the database and created the first admin.
    created = await create_pool(database_url, min_size=1, max_size=4)
    try:
        yield created
    finally:
        await created.close()
