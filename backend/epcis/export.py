"""A case's (or one shipment's) custody steps as an EPCIS 2.0 document in JSON-LD.

Each accepted custody step becomes the events `mapping.EXPORTED` names, with the step's time, the site
as read point and business location, the units and shipment as EPCs, sources and destinations on
shipping and receiving, and before the receipt decision of each leg a `sensor_reporting` event whose
one sensor element summarises its temperature (time range, minimum, maximum, mean; an ALARM_CONDITION
when the leg had an excursion or a temperature alert); the receiving event then carries the disposition
the receiver decided (conformant when accepted, non_conformant when quarantined) and no sensor data.
Each event's eventID is its CBV 2.0 event hash, so the same stored step always exports with the same ID.
The JSON-LD context is referenced by URL and never fetched."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from backend.epcis import identifiers
from backend.epcis.eventid import EPCIS_CONTEXT_URL, event_hash_id
from backend.epcis.formats import iso_utc, utc_offset
from backend.epcis.jobs import Captured
from backend.epcis.mapping import AGGREGATION, EXPORTED, SENSOR_REPORTING, TRANSFORMATION, Step, export_key
from backend.reports.record import CaseRecord, EventLine, SiteInfo, TemperatureLeg

CONTEXT: Final[list[Any]] = [
    EPCIS_CONTEXT_URL,
    {identifiers.EXTENSION_PREFIX: identifiers.EXTENSION_NAMESPACE},
]
_SHIPMENT_STEPS: Final = frozenset({"shipping", "receiving"})


class Known(msgspec.Struct, frozen=True):
    """What the export needs beyond the case record."""

    # What partners' captured events said of the steps they recorded, by custody event id.
    said: dict[int, Captured] = msgspec.field(default_factory=dict)
    # Product -> GTIN, for the products that have one.
    gtins: dict[str, str] = msgspec.field(default_factory=dict)


NOTHING_KNOWN: Final = Known()


def case_document(record: CaseRecord, created: datetime, known: Known = NOTHING_KNOWN) -> dict[str, Any]:
    return _document([e for event in record.events for e in _events(record, event, known)], created)


def shipment_document(
    record: CaseRecord, shipment_id: str, created: datetime, known: Known = NOTHING_KNOWN
) -> dict[str, Any]:
    chosen = [e for e in record.events if e.shipment_id == shipment_id]
    return _document([e for event in chosen for e in _events(record, event, known)], created)


def _document(events: list[dict[str, Any]], created: datetime) -> dict[str, Any]:
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": iso_utc(created),
        "epcisBody": {"eventList": events},
    }


def _offset(site: SiteInfo | None, moment: datetime) -> str:
    try:
        zone = ZoneInfo(site.time_zone) if site else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    return utc_offset(moment.astimezone(zone)) if zone else "+00:00"


def _location(record: CaseRecord, code: str) -> str:
    site = record.site(code)
    return identifiers.location_uri(code, site.gln if site else None)


def _party(record: CaseRecord, code: str) -> str:
    site = record.site(code)
    return identifiers.party_uri(code, site.gln if site else None)


def _leg(record: CaseRecord, shipment_id: str | None) -> TemperatureLeg | None:
    return next((leg for leg in record.legs if leg.shipment_id == shipment_id), None)


def events_of_step(
    record: CaseRecord, event: EventLine, known: Known = NOTHING_KNOWN
) -> list[dict[str, Any]]:
    """The EPCIS events one stored custody step exports as (none for refusals and administration)."""
    return _events(record, event, known)


def _events(record: CaseRecord, event: EventLine, known: Known) -> list[dict[str, Any]]:
    if event.outcome != "accepted":
        return []
    steps = EXPORTED.get(export_key(event.action, event.data), ())
    leg = _leg(record, event.shipment_id)
    sensors = _sensor_elements(leg) if leg is not None else []
    captured = known.said.get(event.id)
    if captured is not None:
        # A captured step is one event (pick-up, receiving, packing, storing, dispensing): it is exported
        # with the business step and disposition its partner sent.
        steps = tuple(
            msgspec.structs.replace(
                s, biz_step=captured.biz_step, disposition=captured.disposition or s.disposition
            )
            for s in steps
        )
    made = [
        _event(record, event, s, sensors, known)
        for s in steps
        if (s.event_type != AGGREGATION or leg is not None) and (s.biz_step != SENSOR_REPORTING or sensors)
    ]
    if captured is not None and captured.event_id and len(made) == 1:
        # The partner's own eventID names the event: it is the same event, as Celltrail states it.
        made[0]["eventID"] = captured.event_id
    return made


def _event(
    record: CaseRecord, event: EventLine, step: Step, sensors: list[dict[str, Any]], known: Known
) -> dict[str, Any]:
    leg = _leg(record, event.shipment_id)
    # Keys in the order EPCIS lists them, so exported documents read the same way every time.
    body: dict[str, Any] = {
        "type": step.event_type,
        "eventTime": iso_utc(event.server_time),
        "eventTimeZoneOffset": _offset(record.site(event.site), event.server_time),
        **_objects(record, event, step, leg, known),
        **_step_terms(step),
        **_places(record, event.site),
        **(_shipment_parties(record, leg) if leg is not None and _names_parties(step) else {}),
        **({"sensorElementList": sensors} if step.biz_step == SENSOR_REPORTING else {}),
        **_ilmd(record, step),
        f"{identifiers.EXTENSION_PREFIX}:custodyRecord": identifiers.record_uri(record.coi, event.seq),
    }
    return {"type": body["type"], "eventID": event_hash_id(body, CONTEXT), **body}


def _objects(
    record: CaseRecord, event: EventLine, step: Step, leg: TemperatureLeg | None, known: Known
) -> dict[str, Any]:
    """What the event is about: the shipment (as the parent of an aggregation) and the units; a
    transformation names the units it consumed apart from those it made."""
    products = {u.id: u.product for u in record.units}

    def unit(unit_id: str) -> str:
        return identifiers.unit_uri(unit_id, known.gtins.get(products.get(unit_id, "")))

    shipment = identifiers.shipment_uri(leg.shipment_id, leg.container_id) if leg else None
    units = [unit(u) for u in sorted(event.unit_ids)]
    if step.event_type == AGGREGATION:
        return {"parentID": shipment, "childEPCs": units}
    if step.event_type == TRANSFORMATION:
        data = event.data if isinstance(event.data, dict) else {}
        inputs = sorted(str(u) for u in data.get("from_units", []))
        return {"inputEPCList": [unit(u) for u in inputs], "outputEPCList": units}
    return {"epcList": ([shipment] if shipment else []) + units}


def _step_terms(step: Step) -> dict[str, Any]:
    terms: dict[str, Any] = {"action": step.action} if step.action else {}
    terms["bizStep"] = step.biz_step
    if step.disposition:
        terms["disposition"] = step.disposition
    return terms


def _places(record: CaseRecord, site: str) -> dict[str, Any]:
    place = {"id": _location(record, site)}
    return {"readPoint": place, "bizLocation": dict(place)}


def _names_parties(step: Step) -> bool:
    # An aggregation packs the units; the departure and arrival of the shipment name who sends it where.
    return step.biz_step in _SHIPMENT_STEPS and step.event_type != AGGREGATION


def _shipment_parties(record: CaseRecord, leg: TemperatureLeg) -> dict[str, Any]:
    parties: dict[str, Any] = {}
    if leg_waybill := _waybill(record, leg):
        parties["bizTransactionList"] = [{"type": "bol", "bizTransaction": leg_waybill}]
    parties["sourceList"] = [
        {"type": "owning_party", "source": _party(record, leg.from_site)},
        {"type": "location", "source": _location(record, leg.from_site)},
    ]
    parties["destinationList"] = [
        {"type": "owning_party", "destination": _party(record, leg.to_site)},
        {"type": "location", "destination": _location(record, leg.to_site)},
    ]
    return parties


def _ilmd(record: CaseRecord, step: Step) -> dict[str, Any]:
    """A trial case's commissioning events name the trial in their ILMD (what is true of the unit from its
    making on): register number, protocol, trial site, subject identifier (a pseudonym) and sponsor."""
    if record.trial is None or step.biz_step != "commissioning":
        return {}
    return {"ilmd": {f"{identifiers.EXTENSION_PREFIX}:clinicalTrial": msgspec.structs.asdict(record.trial)}}


def _waybill(record: CaseRecord, leg: TemperatureLeg) -> str | None:
    """The waybill as planned (kept in the shipment_planned entry's data)."""
    for candidate in record.events:
        if candidate.action == "shipment_planned" and candidate.shipment_id == leg.shipment_id:
            data = candidate.data if isinstance(candidate.data, dict) else {}
            waybill = data.get("waybill")
            return identifiers.waybill_uri(str(waybill)) if waybill else None
    return None


def _sensor_elements(leg: TemperatureLeg) -> list[dict[str, Any]]:
    """One business-level summary of the leg, not the raw readings."""
    summary = leg.summary
    report: dict[str, Any] = {"type": "Temperature"}
    if leg.alarm:
        report["exception"] = "ALARM_CONDITION"
    low, high, mean = summary.min_c, summary.max_c, summary.mean_c
    if summary.first and summary.last and low is not None and high is not None and mean is not None:
        report.update(minValue=round(low, 2), maxValue=round(high, 2), meanValue=round(mean, 2), uom="CEL")
        metadata: dict[str, Any] = {
            "startTime": iso_utc(summary.first),
            "endTime": iso_utc(summary.last),
        }
        if leg.logger_id:
            metadata["deviceID"] = identifiers.logger_uri(leg.logger_id)
        return [{"sensorMetadata": metadata, "sensorReport": [report]}]
    if leg.alarm:
        return [{"sensorReport": [report]}]
    return []
