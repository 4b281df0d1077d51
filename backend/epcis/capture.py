"""EPCIS capture: a partner system (a courier company, a manufacturer's MES) sends an EPCIS 2.0 document;
each event naming Celltrail units and shipments becomes a custody scan through the same state machine
as a hand-held scan (`services.scans.record_scan`), as the signed-in partner account.

A document that is not conformant (JSON schema or CBV 2.0 vocabulary) applies nothing. Otherwise each
event is one transaction: accepted, or rejected with its reason. A step the state machine refuses is
recorded and alerted like any refused scan. The idempotency key of each scan is derived from the event's
eventID (or, without one, its CBV 2.0 event hash), so capturing the same document twice changes nothing
the second time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from backend.db.repo import exports
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.domain.custody import Action
from backend.domain.errors import Conflict, InvalidInput
from backend.epcis import identifiers, mapping, vocabulary
from backend.epcis.eventid import event_hash_id
from backend.epcis.formats import parse_date_time
from backend.epcis.validate import events_of, validate_document
from backend.services.scans import ScanCommand, record_scan


class CapturedEvent(msgspec.Struct, frozen=True, omit_defaults=True):
    index: int
    event_id: str
    action: str | None = None
    custody_event_id: int | None = None
    seq: int | None = None
    message: str | None = None


class RejectedEvent(msgspec.Struct, frozen=True, omit_defaults=True):
    index: int
    event_id: str
    reason: str
    # Set when the state machine refused the step (the refusal is then part of the custody record).
    refusal: str | None = None
    custody_event_id: int | None = None


class CaptureResult(msgspec.Struct, frozen=True):
    events: int
    accepted: list[CapturedEvent]
    rejected: list[RejectedEvent]


class _Skip(Exception):
    """The event cannot become a custody scan; the message says why."""


async def capture(pool: Pool, actor: Principal, document: Any, handover_minutes: int) -> CaptureResult:
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
    context = document.get("@context")
    accepted: list[CapturedEvent] = []
    rejected: list[RejectedEvent] = []
    for index, event in enumerate(events_of(document)):
        event_id = str(event.get("eventID") or event_hash_id(event, context))
        try:
            command = await _command(pool, event, event_id)
            answer = await record_scan(pool, actor, command, handover_minutes)
        except _Skip as skip:
            rejected.append(RejectedEvent(index, event_id, str(skip)))
            continue
        except Conflict as conflict:
            rejected.append(RejectedEvent(index, event_id, conflict.detail))
            continue
        body = answer.body
        if answer.status < 400:
            accepted.append(
                CapturedEvent(
                    index,
                    event_id,
                    action=command.action.value,
                    custody_event_id=body.get("event_id"),
                    seq=body.get("seq"),
                    message=body.get("message"),
                )
            )
        else:
            rejected.append(
                RejectedEvent(
                    index,
                    event_id,
                    str(body.get("detail", "refused")),
                    refusal=body.get("refusal"),
                    custody_event_id=body.get("event_id"),
                )
            )
    return CaptureResult(len(accepted) + len(rejected), accepted, rejected)


async def _command(pool: Pool, event: Mapping[str, Any], event_id: str) -> ScanCommand:
    step = vocabulary.BIZ_STEP.bare(str(event.get("bizStep", ""))) or ""
    action = mapping.CAPTURED.get(step)
    if action is None:
        captured = ", ".join(sorted(mapping.CAPTURED))
        raise _Skip(
            f"business step {step or '(none)'!r} is not captured as a custody step (captured: {captured})"
        )
    event_type, event_action = event.get("type"), event.get("action")
    if action is Action.PACK and (event_type != mapping.AGGREGATION or event_action != "ADD"):
        raise _Skip(
            "packing is captured as an AggregationEvent ADD of units (childEPCs) into the shipment (parentID)"
        )
    if action is not Action.PACK and (event_type != mapping.OBJECT or event_action != "OBSERVE"):
        raise _Skip(f"{step} is captured as an ObjectEvent OBSERVE")
    if (
        action is Action.DISPENSE
        and vocabulary.DISPOSITION.bare(str(event.get("disposition", ""))) == "dispensed"
    ):
        raise _Skip("an infusion is recorded at the bedside with two signatures, not by EPCIS capture")
    async with pool.acquire() as conn:
        codes = [await _code(conn, uri) for uri in _epcs(event)]
        site = await _site(conn, event)
    if not codes:
        raise _Skip("the event names no unit or shipment (epcList, parentID or childEPCs)")
    storage = None
    if action is Action.STORE:
        location = event.get("bizLocation")
        storage = location.get("id") if isinstance(location, Mapping) else None
        if not storage:
            raise _Skip("a storing event names the storage location as its bizLocation")
    command = ScanCommand(
        idempotency_key=f"epcis:{event_id}",
        action=action,
        site=site,
        codes=codes,
        device_time=parse_date_time(str(event["eventTime"])),
        storage_location=storage,
    )
    too_large = command.over_bounds()
    if too_large is not None:
        raise _Skip(too_large)
    return command


def _epcs(event: Mapping[str, Any]) -> list[str]:
    found = [event["parentID"]] if event.get("parentID") else []
    for name in ("epcList", "childEPCs"):
        found += list(event.get(name) or [])
    return [str(uri) for uri in found]


async def _code(conn: Any, uri: str) -> str:
    item = identifiers.item_of(uri)
    if item is None:
        raise _Skip(f"{uri} is not a Celltrail unit or shipment")
    if item.kind != "sscc":
        return item.value
    shipment_id = await exports.shipment_by_sscc(conn, item.value)
    if shipment_id is None:
        raise _Skip(f"no shipment travels in the container with SSCC {item.value}")
    return shipment_id


async def _site(conn: Any, event: Mapping[str, Any]) -> str:
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
    raise _Skip(
        "the readPoint names no Celltrail site: use the site's GLN (https://id.gs1.org/414/<gln> or its "
        f"SGLN) or {identifiers.SITE}<code>"
    )
