"""EPCIS capture: a partner system (a courier company, a manufacturer's MES) sends an EPCIS 2.0 document;
each event naming Celltrail units and shipments becomes a custody scan through the same state machine
as a hand-held scan (`services.scans`), as the signed-in partner account.

As the EPCIS 2.0 capture interface has it, a document is a capture job: it is checked whole first (JSON
schema, CBV 2.0 vocabulary, the capture limits; a document that fails is refused at once and applies
nothing), then its events are recorded in ONE transaction, each in a savepoint. With the error behaviour
`rollback` (the default) one event in error rolls the whole document back: nothing is recorded, and the
job names every event's error. With `proceed` the events in error are left out and the others are kept.
The job's outcome is written in that same transaction.

Each event ends as one of:
- recorded: it became a custody step (or was one already: the idempotency key of each scan is derived
  from the event's eventID, or without one its CBV 2.0 event hash, so the same document captured twice
  records nothing the second time). What the event said of the step (its eventID, business step and
  disposition, a URI of the partner's own included) is kept with it and exported for it;
- ignored: a conformant event that is not a custody step for Celltrail (it names none of Celltrail's
  units or shipments, or its business step is not a custody step Celltrail captures, custom business
  steps included); ignoring one is no error;
- an error: it names Celltrail's units or shipments but cannot be recorded (no known site, wrong event
  shape, a step EPCIS cannot carry), or the state machine refused the step. A refusal kept by `proceed`
  is recorded in the case's chain and alerted like a refused hand-held scan; with `rollback` it is
  rolled back with the rest and stays in the job."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, cast

import msgspec

from backend.db.repo import exports
from backend.db.types import Conn, Pool
from backend.domain.access import Principal
from backend.domain.custody import Action
from backend.domain.errors import DomainError, InvalidInput, NotFound
from backend.epcis import identifiers, jobs, mapping, products, vocabulary
from backend.epcis.eventid import event_hash_id
from backend.epcis.formats import iso_utc, parse_date_time
from backend.epcis.validate import events_of, validate_document
from backend.services import objects
from backend.services.scans import Accepted, ScanCommand, record_scan_in

log = logging.getLogger(__name__)

# Events per document and bytes per document a capture takes (announced in the GS1-EPCIS-Capture-Limit
# and GS1-EPCIS-Capture-File-Size-Limit headers). A document is one transaction holding the chain locks
# of the cases it names, so it is kept to what a partner sends for a shipment or a day's hand-overs.
CAPTURE_LIMIT: Final = 500
FILE_SIZE_LIMIT: Final = 4 * 1024 * 1024
ERROR_BEHAVIOURS: Final = (jobs.ROLLBACK, jobs.PROCEED)


class TooLarge(Exception):
    """The document exceeds a capture limit; nothing was applied."""


class _Ignored(Exception):
    """The event is conformant but not a custody step for Celltrail; the message says why."""


class _Unrecordable(Exception):
    """The event names Celltrail's units or shipments but cannot be recorded; the message says why."""


class _Rollback(Exception):
    """An event is in error and the document is captured whole or not at all."""


def check(document: Any) -> int:
    """The number of events of a document fit to capture: InvalidInput naming every problem when it is
    not conformant, TooLarge past the capture limit. Nothing is applied either way."""
    count = len(events_of(document)) if isinstance(document, Mapping) else 0
    if count > CAPTURE_LIMIT:
        raise TooLarge(
            f"the document holds {count} events; a capture takes at most {CAPTURE_LIMIT} "
            "(GS1-EPCIS-Capture-Limit): send it in parts; nothing was applied"
        )
    problems = validate_document(document)
    if problems:
        errors: dict[str, str] = {}
        for problem in problems:
            errors[problem.path] = "; ".join(filter(None, (errors.get(problem.path), problem.message)))
        first = problems[0]
        raise InvalidInput(
            f"not a conformant EPCIS 2.0 document ({len(problems)} problem(s), first at {first.path}: "
            f"{first.message}); nothing was applied",
            field_errors=errors,
        )
    return count


def error_behaviour(header: str | None) -> str:
    """The GS1-Capture-Error-Behaviour a client asked for (rollback when it asked for none)."""
    value = (header or jobs.ROLLBACK).strip().lower()
    if value not in ERROR_BEHAVIOURS:
        raise InvalidInput(
            f"GS1-Capture-Error-Behaviour may be {' or '.join(ERROR_BEHAVIOURS)}, not {header!r}",
            field_errors={"GS1-Capture-Error-Behaviour": "unsupported"},
        )
    return value


async def run(
    pool: Pool, job_id: str, actor: Principal, document: Mapping[str, Any], handover_minutes: int
) -> None:
    """Record a checked document's events for the job `job_id` (created as running) and finish the job."""
    async with pool.acquire() as conn:
        job = await jobs.get(conn, job_id)
        if job is None or not job.running:
            return
        try:
            outcome, kept = await _record_in_transaction(
                conn, job_id, job.error_behaviour, actor, document, handover_minutes
            )
        except Exception as exc:
            log.exception("EPCIS capture failed", extra={"capture": job_id})
            await jobs.finish(conn, job_id, False, [], [_problem(None, _failure(exc))])
            return
        if not kept:
            rolled = [{**o, "status": "rolled_back"} if o["status"] == "recorded" else o for o in outcome]
            await jobs.finish(conn, job_id, False, rolled, _errors(_failed(outcome)))
        _log_refusals(job_id, outcome, kept)


async def _record_in_transaction(
    conn: Conn,
    job_id: str,
    error_behaviour: str,
    actor: Principal,
    document: Mapping[str, Any],
    handover_minutes: int,
) -> tuple[list[dict[str, Any]], bool]:
    """Each event's outcome, and whether the transaction was kept: an event in error under `rollback`, or
    a job no longer running when it is finished, rolls the whole document back."""
    outcome: list[dict[str, Any]] = []
    try:
        async with conn.transaction():
            outcome = await _record_all(conn, job_id, actor, document, handover_minutes)
            failed = _failed(outcome)
            if failed and error_behaviour == jobs.ROLLBACK:
                raise _Rollback
            if not await jobs.finish(conn, job_id, True, outcome, _errors(failed)):
                raise _Rollback
    except _Rollback:
        return outcome, False
    return outcome, True


def _failed(outcome: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in outcome if o["status"] == "error"]


def _log_refusals(job_id: str, outcome: list[dict[str, Any]], kept: bool) -> None:
    # A refusal rolled back with its document leaves no chain entry and no alert: the log keeps it.
    for refused in (o for o in outcome if o.get("refusal")):
        log.warning(
            "EPCIS capture event refused",
            extra={"capture": job_id, "index": refused["index"], "refusal": refused["refusal"], "kept": kept},
        )


def _failure(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return f"{exc.detail}; nothing of the document was recorded"
    return "the capture failed on the server; nothing of the document was recorded: send it again"


def _problem(index: int | None, detail: str, event_id: str | None = None) -> dict[str, Any]:
    """One error as the capture job lists it: an RFC 9457 problem, pointing at its event."""
    problem: dict[str, Any] = {
        "type": "urn:celltrail:problem:capture-event"
        if index is not None
        else "urn:celltrail:problem:capture",
        "title": "Event not captured" if index is not None else "Capture failed",
        "status": 422 if index is not None else 500,
        "detail": detail,
    }
    if index is not None:
        problem["instance"] = f"epcisBody.eventList[{index}]"
        problem["eventID"] = event_id
    return problem


def _errors(failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_problem(o["index"], o["reason"], o["eventID"]) for o in failed]


async def _record_all(
    conn: Conn, job_id: str, actor: Principal, document: Mapping[str, Any], handover_minutes: int
) -> list[dict[str, Any]]:
    context = document.get("@context")
    outcome: list[dict[str, Any]] = []
    for index, event in enumerate(events_of(document)):
        event_id = str(event.get("eventID") or event_hash_id(event, context))
        entry: dict[str, Any] = {"index": index, "eventID": event_id}
        try:
            command = await _command(conn, actor, event, event_id)
            answer = await record_scan_in(conn, actor, command, handover_minutes)
        except _Ignored as ignored:
            outcome.append({**entry, "status": "ignored", "reason": str(ignored)})
            continue
        except _Unrecordable as unrecordable:
            outcome.append({**entry, "status": "error", "reason": str(unrecordable)})
            continue
        except DomainError as refused:
            outcome.append({**entry, "status": "error", "reason": refused.detail})
            continue
        entry |= {"action": command.action.value, "custodyEventID": answer.event_id}
        if isinstance(answer, Accepted):
            outcome.append({**entry, "status": "recorded", "seq": answer.seq})
            await jobs.keep_captured(conn, answer.event_id, job_id, _said(event))
        else:
            outcome.append({**entry, "status": "error", "reason": answer.detail, "refusal": answer.code})
    return outcome


async def _command(conn: Conn, actor: Principal, event: Mapping[str, Any], event_id: str) -> ScanCommand:
    epcs = _epcs(event)
    ours = await _ours(conn, actor, epcs)
    action, step = _custody_step(event, ours)
    if problem := _unrecordable(event, action, step, [uri for uri in epcs if uri not in ours]):
        raise _Unrecordable(problem)
    site = await _site(conn, event)
    command = ScanCommand(
        idempotency_key=f"epcis:{event_id}",
        action=action,
        site=site,
        codes=list(dict.fromkeys(ours.values())),
        device_time=parse_date_time(str(event["eventTime"])),
        storage_location=_storage(event, action),
    )
    too_large = command.over_bounds()
    if too_large is not None:
        raise _Unrecordable(too_large)
    return command


def _custody_step(event: Mapping[str, Any], ours: Mapping[str, str]) -> tuple[Action, str]:
    """The custody action the event's business step captures (and the bare step), or _Ignored when the
    event is none of Celltrail's business."""
    raw_step = str(event.get("bizStep", ""))
    step = vocabulary.BIZ_STEP.bare(raw_step) or ""
    action = mapping.CAPTURED.get(step)
    if not ours:
        raise _Ignored("the event names none of Celltrail's units or shipments")
    if action is None:
        captured = ", ".join(sorted(mapping.CAPTURED))
        raise _Ignored(
            f"business step {step or raw_step or '(none)'!r} is not a custody step Celltrail records "
            f"(captured: {captured})"
        )
    return action, step


# The event shape each step is captured as: packing puts units into the shipment, the others observe them.
_PACKING_SHAPE: Final = (
    mapping.AGGREGATION,
    "ADD",
    "packing is captured as an AggregationEvent ADD of units (childEPCs) into the shipment (parentID)",
)
_OBSERVING_SHAPE: Final = (mapping.OBJECT, "OBSERVE", "{step} is captured as an ObjectEvent OBSERVE")


def _unrecordable(event: Mapping[str, Any], action: Action, step: str, foreign: list[str]) -> str | None:
    """Why an event of ours cannot become the custody step `action`, or None (the first reason found)."""
    if foreign:
        return (
            f"{foreign[0]} is not a Celltrail unit or shipment: a custody step names only Celltrail's "
            "units and shipments"
        )
    event_type, event_action, shape_problem = _PACKING_SHAPE if action is Action.PACK else _OBSERVING_SHAPE
    if (event.get("type"), event.get("action")) != (event_type, event_action):
        return shape_problem.format(step=step)
    # The infusion needs two signatures at the bedside, which an EPCIS event cannot carry.
    if (
        action is Action.DISPENSE
        and vocabulary.DISPOSITION.bare(str(event.get("disposition", ""))) == "dispensed"
    ):
        return "an infusion is recorded at the bedside with two signatures, not by EPCIS capture"
    return None


def _storage(event: Mapping[str, Any], action: Action) -> str | None:
    """The storage location a storing event names as its bizLocation (None for the other steps)."""
    if action is not Action.STORE:
        return None
    location = event.get("bizLocation")
    storage = location.get("id") if isinstance(location, Mapping) else None
    if not storage:
        raise _Unrecordable("a storing event names the storage location as its bizLocation")
    return cast("str", storage)


def _said(event: Mapping[str, Any]) -> jobs.Captured:
    """The event's own eventID, business step and disposition, CBV terms in their bare form."""
    step, disposition = str(event["bizStep"]), event.get("disposition")
    return jobs.Captured(
        str(event["eventID"]) if event.get("eventID") else None,
        vocabulary.BIZ_STEP.bare(step) or step,
        (vocabulary.DISPOSITION.bare(str(disposition)) or str(disposition)) if disposition else None,
    )


def _epcs(event: Mapping[str, Any]) -> list[str]:
    found = [event["parentID"]] if event.get("parentID") else []
    for name in ("epcList", "childEPCs"):
        found += list(event.get(name) or [])
    return [str(uri) for uri in found]


async def _ours(conn: Conn, actor: Principal, uris: list[str]) -> dict[str, str]:
    """The scan code of each URI that names a Celltrail unit or shipment (a container's SSCC names the
    shipment travelling in it, an SGTIN with a product's GTIN names a unit; others are someone else's)."""
    found: dict[str, str] = {}
    for uri in uris:
        item = identifiers.item_of(uri)
        if item is None:
            continue
        if item.kind == "sgtin":
            gtin, _, unit_id = item.value.partition("/")
            if await products.is_product_gtin(conn, gtin):
                await _check_product(conn, actor, gtin, unit_id)
                found[uri] = unit_id
        elif item.kind != "sscc":
            found[uri] = item.value
        elif (shipment_id := await exports.shipment_by_sscc(conn, item.value)) is not None:
            try:
                await objects.shipment(conn, actor, shipment_id)
            except NotFound:
                # Another site's container is answered like one Celltrail does not ship in: naming its
                # shipment would tell the caller what it may not see.
                continue
            found[uri] = shipment_id
    return found


async def _check_product(conn: Conn, actor: Principal, gtin: str, unit_id: str) -> None:
    """A visible unit named by the GTIN of another product is an error. A unit the caller may not see is
    left to the scan, which answers it as one that does not exist, whatever its product."""
    try:
        unit, _case = await objects.unit(conn, actor, unit_id)
    except NotFound:
        return
    if (await products.gtins(conn)).get(unit.product) != gtin:
        raise _Unrecordable(f"GTIN {gtin} is not the GTIN of unit {unit_id}'s product ({unit.product})")


async def _site(conn: Conn, event: Mapping[str, Any]) -> str:
    for name in ("readPoint", "bizLocation"):
        place = event.get(name)
        uri = place.get("id") if isinstance(place, Mapping) else None
        item = identifiers.place_of(str(uri)) if uri else None
        if item is None:
            continue
        if item.kind == "site":
            return item.value
        code = await exports.site_by_gln(conn, item.value)
        if code is not None:
            return code
    raise _Unrecordable(
        "the readPoint names no Celltrail site: use the site's GLN (https://id.gs1.org/414/<gln> or its "
        f"SGLN) or {identifiers.SITE}<code>"
    )


class JobView(msgspec.Struct, frozen=True, omit_defaults=True):
    """A capture job as the EPCIS 2.0 capture interface shows it, with Celltrail's per-event outcome."""

    captureID: str  # noqa: N815 - EPCIS 2.0 names
    createdAt: str  # noqa: N815
    running: bool
    success: bool | None
    captureErrorBehaviour: str  # noqa: N815
    eventCount: int  # noqa: N815
    errors: list[dict[str, Any]]
    events: list[dict[str, Any]]
    finishedAt: str | None = None  # noqa: N815


def view(job: jobs.CaptureJob) -> JobView:
    return JobView(
        captureID=job.id,
        createdAt=iso_utc(job.created_at),
        finishedAt=iso_utc(job.finished_at) if job.finished_at else None,
        running=job.running,
        success=job.success,
        captureErrorBehaviour=job.error_behaviour,
        eventCount=job.event_count,
        errors=job.errors,
        events=job.outcome,
    )
