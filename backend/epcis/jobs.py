"""EPCIS 2.0 capture jobs as stored: one row per captured document, visible to the sites its submitter
was bound to when it was sent. The job's outcome is written in the same transaction as the document's
events, so a job that says it succeeded has its events recorded, and one still running has none."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Final

import msgspec

from backend.db.types import Conn
from backend.domain.access import Principal
from backend.services.visibility import site_filter

ROLLBACK: Final = "rollback"
PROCEED: Final = "proceed"
# A job still running this long after it was sent was cut off by a stop of the server; its transaction
# was rolled back with the connection, so nothing of it is recorded.
STALE_MINUTES: Final = 30
LIST_LIMIT: Final = 100


class CaptureJob(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    submitted_by: int
    sites: list[str]
    error_behaviour: str
    event_count: int
    running: bool
    success: bool | None
    outcome: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    created_at: datetime
    finished_at: datetime | None


_COLUMNS: Final = """id, submitted_by, sites, error_behaviour, event_count, running, success, outcome,
    errors, created_at, finished_at"""
_INTERRUPTED: Final = {
    "type": "urn:celltrail:problem:capture-interrupted",
    "title": "Capture interrupted",
    "status": 500,
    "detail": "the server stopped before the capture finished; nothing of the document was recorded: "
    "send it again",
}


def new_id() -> str:
    return secrets.token_hex(16)


def _job(row: Any) -> CaptureJob:
    return CaptureJob(**dict(row))


async def create(
    conn: Conn, job_id: str, actor: Principal, error_behaviour: str, event_count: int
) -> CaptureJob:
    row = await conn.fetchrow(
        f"""INSERT INTO epcis_captures (id, submitted_by, sites, error_behaviour, event_count)
            VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}""",  # noqa: S608 - constant fragments only
        job_id,
        actor.user_id,
        sorted(actor.sites),
        error_behaviour,
        event_count,
    )
    return _job(row)


async def finish(
    conn: Conn, job_id: str, success: bool, outcome: list[dict[str, Any]], errors: list[dict[str, Any]]
) -> bool:
    """False when the job is no longer running (declared interrupted meanwhile): the caller then rolls
    its transaction back, so the job's answer and the record never disagree."""
    done = await conn.fetchval(
        """UPDATE epcis_captures SET running = false, success = $2, outcome = $3, errors = $4,
                                     finished_at = now()
           WHERE id = $1 AND running RETURNING true""",
        job_id,
        success,
        outcome,
        errors,
    )
    return bool(done)


async def _settle_stale(conn: Conn) -> None:
    await conn.execute(
        """UPDATE epcis_captures SET running = false, success = false, errors = $1, finished_at = now()
           WHERE running AND created_at < now() - make_interval(mins => $2)""",
        [_INTERRUPTED],
        STALE_MINUTES,
    )


async def get(conn: Conn, job_id: str) -> CaptureJob | None:
    """One job, whoever may see it (the object gate, `services.objects.capture_job`, decides that)."""
    await _settle_stale(conn)
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM epcis_captures WHERE id = $1",  # noqa: S608 - constant fragments only
        job_id,
    )
    return _job(row) if row is not None else None


async def listed(conn: Conn, principal: Principal) -> list[CaptureJob]:
    """The latest capture jobs the caller may see (`services.objects.capture_job`'s rule), newest first."""
    await _settle_stale(conn)
    sites = site_filter(principal)
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM epcis_captures
            WHERE $1::text[] IS NULL OR sites && $1::text[] OR submitted_by = $2
            ORDER BY created_at DESC, id LIMIT $3""",  # noqa: S608 - constant fragments only
        sites,
        principal.user_id,
        LIST_LIMIT,
    )
    return [_job(row) for row in rows]


class Captured(msgspec.Struct, frozen=True):
    """What a captured event said of the custody step it recorded (see migration 0027)."""

    event_id: str | None
    biz_step: str
    disposition: str | None


async def keep_captured(conn: Conn, custody_event_id: int, job_id: str, said: Captured) -> None:
    """Remember what the event said; the first capture of a step is the one kept (a document captured
    again records nothing new)."""
    await conn.execute(
        """INSERT INTO epcis_captured_events (custody_event_id, capture_id, event_id, biz_step, disposition)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (custody_event_id) DO NOTHING""",
        custody_event_id,
        job_id,
        said.event_id,
        said.biz_step,
        said.disposition,
    )


async def captured_for(conn: Conn, custody_event_ids: list[int]) -> dict[int, Captured]:
    rows = await conn.fetch(
        """SELECT custody_event_id, event_id, biz_step, disposition FROM epcis_captured_events
           WHERE custody_event_id = ANY($1::bigint[])""",
        custody_event_ids,
    )
    return {
        int(r["custody_event_id"]): Captured(r["event_id"], r["biz_step"], r["disposition"]) for r in rows
    }
