"""Shared values for the bridge's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest


@pytest.fixture
def received_at() -> datetime:
    # A fixed receive time keeps the future-timestamp rule deterministic.
    return datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
