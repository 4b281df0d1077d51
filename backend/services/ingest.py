"""Telemetry ingest: one bridge batch -> readings, logger statuses and dead letters, in one transaction.

The bridge acknowledges MQTT messages only after our 200, so the 200 must mean committed. Redelivery is
harmless: readings are unique on (logger, ts), and dead letters on their place in the batch (whose id a
retry keeps) or, for readings of unknown loggers, on (logger, ts) as well.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

import msgspec

from backend.db.repo import dead_letters, loggers, readings
from backend.db.repo.dead_letters import DeadLetterRow
from backend.db.repo.loggers import StatusColumns
from backend.db.repo.readings import BatchInsert, ReadingColumns
from backend.db.types import Pool
from backend.services import excursions
from firmware_bridge.ingest_contract import IngestBatch, IngestReading, LoggerStatus

if TYPE_CHECKING:
    from backend.db.types import Conn

UNKNOWN_LOGGER: Final = "unknown_logger"
# Same logger and time as a stored reading, another value: both values kept in the dead letter.
CONFLICTING_READING: Final = "conflicting_reading"
_NOTHING: Final = BatchInsert(known=0, stored=0, unknown=0, unknown_new=0, announced=0)
_json: Final = msgspec.json.Encoder()


class IngestOutcome(msgspec.Struct, frozen=True, kw_only=True):
    stored: int
    duplicates: int
    # Dead letters the batch carried or produced (a retried batch reports them again, stores none again).
    dead_lettered: int
    # Kinds of the dead letters newly stored by this request.
    new_dead_letter_kinds: list[str]
    statuses: int
    newest_received: datetime | None


def _reading_columns(batch: list[IngestReading]) -> ReadingColumns:
    return ReadingColumns(
        logger_id=[r.logger_id for r in batch],
        ts=[r.ts for r in batch],
        temp_c=[r.temp_c for r in batch],
        battery_pct=[r.battery_pct for r in batch],
        lid_open=[r.lid_open for r in batch],
        received_at=[r.received_at for r in batch],
    )


def _status_columns(batch: list[LoggerStatus]) -> StatusColumns:
    return StatusColumns(
        logger_id=[s.logger_id for s in batch],
        online=[s.online for s in batch],
        ts=[s.ts for s in batch],
        received_at=[s.received_at for s in batch],
        retained=[s.retained for s in batch],
        battery_pct=[s.battery_pct for s in batch],
        firmware=[s.firmware for s in batch],
    )


def _bridge_dead_letters(batch: IngestBatch) -> list[DeadLetterRow]:
    return [
        DeadLetterRow(
            origin="bridge",
            item_index=i,
            kind=d.kind,
            reason=d.reason,
            topic=d.topic,
            payload=d.payload,
            logger_id=d.logger_id,
            reading_ts=None,
            received_at=d.received_at,
        )
        for i, d in enumerate(batch.dead_letters)
    ]


def _unknown_status(index: int, status: LoggerStatus) -> DeadLetterRow:
    return DeadLetterRow(
        origin="status",
        item_index=index,
        kind=UNKNOWN_LOGGER,
        reason=f"unknown logger {status.logger_id}: not registered, or deactivated, in the logger registry",
        topic=None,
        payload=_json.encode(status),
        logger_id=status.logger_id,
        reading_ts=None,
        received_at=status.received_at,
    )


async def ingest(pool: Pool, batch: IngestBatch) -> IngestOutcome:
    readings_only = not batch.statuses and not batch.dead_letters
    rows: list[DeadLetterRow] = []
    kinds: list[str] = []
    async with pool.acquire() as conn:
        if readings_only:
            # The common case: one statement, which is one transaction of its own (two round trips fewer).
            inserted = await _insert_readings(conn, batch)
        else:
            async with conn.transaction():
                inserted = await _insert_readings(conn, batch)
                rows = _bridge_dead_letters(batch)
                if batch.statuses:
                    updated = await loggers.apply_statuses(conn, _status_columns(batch.statuses))
                    # A retained status of an unknown logger is the broker replaying old news on every
                    # new subscription; only fresh ones are worth a dead letter.
                    rows += [
                        _unknown_status(i, s)
                        for i, s in enumerate(batch.statuses)
                        if s.logger_id not in updated and not s.retained
                    ]
                kinds = await dead_letters.insert_many(conn, batch.batch_id, batch.bridge_id, rows)
    if inserted.stored:
        # After the commit: the readings are safe whatever the rules do; a failed evaluation is retried by
        # the periodic sweep (stored readings are marked for it by a trigger).
        await excursions.evaluate_after_ingest(pool, set(), {r.logger_id for r in batch.readings})
    return IngestOutcome(
        stored=inserted.stored,
        duplicates=inserted.known - inserted.stored - inserted.conflicting,
        dead_lettered=len(rows) + inserted.unknown + inserted.conflicting,
        new_dead_letter_kinds=kinds
        + [UNKNOWN_LOGGER] * inserted.unknown_new
        + [CONFLICTING_READING] * inserted.conflicting_new,
        statuses=len(batch.statuses),
        newest_received=max((r.received_at for r in batch.readings), default=None),
    )


async def _insert_readings(conn: Conn, batch: IngestBatch) -> BatchInsert:
    if not batch.readings:
        return _NOTHING
    columns = _reading_columns(batch.readings)
    return await readings.insert_batch(conn, columns, batch.batch_id, batch.bridge_id)
