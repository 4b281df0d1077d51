"""Live streams read the outbox in id order from the last id they sent. A transaction that took a lower
id and commits after a higher one must still reach a reader that polled in between: the reader stops
before a missing id until it is settled (outbox.SETTLE_SECONDS). Real connections, real transactions."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from backend.db.pool import _init_connection
from backend.db.repo import outbox


@pytest.fixture
async def conns(database_url: str) -> Any:
    opened = [await asyncpg.connect(database_url) for _ in range(3)]
    for conn in opened:
        await _init_connection(conn)  # the application's JSON codecs
    try:
        yield opened
    finally:
        for conn in opened:
            await conn.close()


async def _stream(reader: asyncpg.Connection[Any], last: int, delivered: list[int]) -> int:
    """One poll of a stream with no site restriction: what it sends, and its new last id."""
    for row in await outbox.after(reader, last, None):
        delivered.append(row.id)
        last = row.id
    return last


async def test_a_late_commit_with_a_lower_id_is_delivered_in_order_once(conns: Any) -> None:
    early, late, reader = conns
    await outbox.publish(late, "test", ["S"], None, {"n": 0})  # something before
    start = await outbox.latest_id(reader)
    delivered: list[int] = []
    last = await _stream(reader, start, delivered)

    slow = early.transaction()
    await slow.start()
    lower = await outbox.publish(early, "test", ["S"], None, {"n": 1})
    higher = await outbox.publish(late, "test", ["S"], None, {"n": 2})  # committed at once
    assert lower < higher
    # The higher id is committed, the lower one not yet: the stream waits rather than pass it by, and a
    # stream starting now starts before it.
    last = await _stream(reader, last, delivered)
    assert delivered == []
    assert await outbox.latest_id(reader) < lower
    await slow.commit()
    last = await _stream(reader, last, delivered)
    last = await _stream(reader, last, delivered)
    assert delivered == [lower, higher]


async def test_an_older_transaction_numbering_later_does_not_let_the_reader_skip(
    conns: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer of the higher id began (took its transaction id) before the writer of the lower one."""
    older, younger, reader = conns
    last = await outbox.latest_id(reader)
    delivered: list[int] = []
    first = older.transaction()
    await first.start()
    await older.fetchval("SELECT pg_current_xact_id()")
    second = younger.transaction()
    await second.start()
    lower = await outbox.publish(younger, "test", ["S"], None, {"n": 1})
    higher = await outbox.publish(older, "test", ["S"], None, {"n": 2})
    await first.commit()
    last = await _stream(reader, last, delivered)
    assert delivered == []
    await second.commit()
    last = await _stream(reader, last, delivered)
    assert delivered == [lower, higher]
    # A rolled-back id leaves a gap that holds the stream back only until it is settled.
    monkeypatch.setattr(outbox, "SETTLE_SECONDS", 0.5)
    gap = younger.transaction()
    await gap.start()
    await outbox.publish(younger, "test", ["S"], None, {"n": 3})
    await gap.rollback()
    after_gap = await outbox.publish(younger, "test", ["S"], None, {"n": 4})
    last = await _stream(reader, last, delivered)
    assert delivered == [lower, higher]
    await asyncio.sleep(1.0)
    last = await _stream(reader, last, delivered)
    assert delivered == [lower, higher, after_gap]
    assert await outbox.latest_id(reader) == after_gap
