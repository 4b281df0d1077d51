"""The vein-to-vein record of one case, as plain data: the case, its units, every custody event in order
with who, where, when and the signatures, each shipment leg's temperature (readings, summary,
excursions), the alerts and how they were handled, the corrections, and the chain's verification.

It is read in one read-only snapshot, so the verdict and the events it speaks of are the same rows. The
PDF, the JSON export and the EPCIS export are all made from this one structure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from backend.db.repo import cases, events, exports, products, shipments, sites
from backend.db.repo import excursions as excursion_repo
from backend.db.repo.products import ProductLimits
from backend.domain.errors import NotFound
from backend.domain.replay import CASE_CANCELLED
from backend.domain.temperature import Summary, summarise
from backend.reports.case_fields import PatientFields, TrialFields, patient_fields, trial_fields
from backend.reports.excursions import Excursion, find_excursions
from backend.services import cases as case_service
from backend.services import chain_verify, checkpoints, record_keys
from backend.services import excursions as excursion_service
from backend.services.visibility import sees_patient_fields
from celltrail_shared.identifiers import Coi

if TYPE_CHECKING:
    from backend.db.repo.cases import UnitRow
    from backend.db.repo.exports import AlertEntry
    from backend.db.repo.shipments import ShipmentRow
    from backend.db.types import Conn, Pool
    from backend.domain.access import Principal

# Alert kinds that speak of the temperature of the load (as opposed to custody refusals, hand-overs...).
TEMPERATURE_ALERT_KINDS: Final = frozenset(
    {"temperature_high", "temperature_low", "mkt_high", "predicted_excursion", "rate_of_change"}
)
# A leg's readings beyond this many are not charted or exported with the record (CSV has them all).
MAX_LEG_READINGS: Final = 50_000


class SiteInfo(msgspec.Struct, frozen=True):
    code: str
    name: str
    kind: str
    time_zone: str
    gln: str | None


class UnitLine(msgspec.Struct, frozen=True):
    id: str
    kind: str
    din: str | None
    product: str
    status: str
    site: str | None
    storage_location: str | None
    released: bool
    quarantined: bool
    expires_at: datetime | None
    thawed_at: datetime | None
    # A product bag's catalogue product and when it was made (the start of its shelf life).
    catalogue_product: str | None = None
    manufactured_at: datetime | None = None


class SignatureLine(msgspec.Struct, frozen=True):
    printed_name: str
    username: str
    role: str
    meaning: str
    signed_at: datetime


class EventLine(msgspec.Struct, frozen=True):
    id: int
    seq: int
    server_time: datetime
    device_time: datetime | None
    action: str
    outcome: str
    refusal: str | None
    detail: str
    actor: str
    site: str
    shipment_id: str | None
    unit_ids: list[str]
    counterpart: str | None
    signatures: list[SignatureLine]
    data: Any
    corrects: int | None
    corrected_by: list[int]
    hash: str
    gps: Any = None
    # The server time in the site's own time zone, for the reader there (UTC stays the reference).
    local_time: str = ""


class GenealogyLine(msgspec.Struct, frozen=True):
    """A product bag and the starting material it was made from, as its registration recorded it."""

    product: str
    inputs: list[str]
    seq: int
    registered_by: str
    registered_at: datetime
    site: str


class DeviationLine(msgspec.Struct, frozen=True):
    """A delivery accepted by a QA override despite an unresolved critical alert on its leg."""

    seq: int
    shipment_id: str | None
    deviation: str
    alerts: list[int]
    signatures: list[SignatureLine]
    at: datetime


class DeviationRecordLine(msgspec.Struct, frozen=True):
    """A deviation QA recorded (services/deviations.py), with the events it concerns by number."""

    seq: int
    description: str
    impact: str
    disposition: str
    concerns: list[int]
    by: str
    at: datetime
    signatures: list[SignatureLine]


class HoldLine(msgspec.Struct, frozen=True):
    """A unit put on hold or released by QA, or quarantined by the receiver's decision at receipt."""

    seq: int
    unit_ids: list[str]
    what: str
    reason: str | None
    by: str
    at: datetime
    signatures: list[SignatureLine]


class CancellationLine(msgspec.Struct, frozen=True):
    seq: int
    reason: str
    by: str
    at: datetime
    signatures: list[SignatureLine]


class ReviewLine(msgspec.Struct, frozen=True):
    """QA's signed 'record reviewed': how far the chain reached when it was signed."""

    seq: int
    signature: SignatureLine | None
    events_reviewed: int
    head_hash: str | None
    comment: str | None
    local_time: str
    # Events recorded after this review (not covered by its signature).
    later_events: int


class TemperatureLeg(msgspec.Struct, frozen=True):
    shipment_id: str
    from_site: str
    to_site: str
    container_id: str
    logger_id: str | None
    profile: str
    low_c: float | None
    high_c: float | None
    status: str
    planned_departure: datetime
    planned_arrival: datetime
    departed_at: datetime | None
    arrived_at: datetime | None
    received_at: datetime | None
    units: list[str]
    summary: Summary
    excursions: list[Excursion]
    temperature_alerts: list[int]
    # True when the readings left the range or a temperature alert was raised for the leg.
    alarm: bool
    readings: list[tuple[datetime, float]]
    readings_truncated: bool


class AlertLine(msgspec.Struct, frozen=True):
    id: int
    kind: str
    severity: str
    status: str
    title: str
    detail: str
    shipment_id: str | None
    unit_id: str | None
    started_at: datetime
    ended_at: datetime | None
    peak_value: float | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_comment: str | None
    closed_by: str | None
    closed_at: datetime | None
    close_reason: str | None


class CorrectionLine(msgspec.Struct, frozen=True):
    event_id: int
    seq: int
    corrects_event_id: int
    corrects_seq: int | None
    reason: str | None
    fields: Any
    actor: str
    at: datetime


class ChainVerdict(msgspec.Struct, frozen=True):
    ok: bool
    events: int
    head_hash: str | None
    message: str
    first_break: dict[str, Any] | None
    # verified, broken or unverifiable (a record key missing here)
    status: str = "verified"
    # The external checkpoint that covers the last event, in words (or why none does).
    checkpoint: str = "no checkpoint yet"
    state_mismatches: list[dict[str, Any]] = []


class CaseRecord(msgspec.Struct, frozen=True):
    coi: str
    barcode: str
    eye_readable: str
    treatment_site: str
    therapy: str
    status: str
    created_at: datetime
    # None both when the case has none and when the requester may not see them (then `patient_withheld`).
    patient: PatientFields | None
    patient_withheld: bool
    sites: list[SiteInfo]
    units: list[UnitLine]
    legs: list[TemperatureLeg]
    events: list[EventLine]
    alerts: list[AlertLine]
    corrections: list[CorrectionLine]
    # Whether any entry was corrected after it was first recorded (by a later correction event).
    corrected: bool
    chain: ChainVerdict
    generated_at: datetime
    generated_for: str
    genealogy: list[GenealogyLine] = []
    deviations: list[DeviationLine] = []
    holds: list[HoldLine] = []
    deviation_records: list[DeviationRecordLine] = []
    cancellation: CancellationLine | None = None
    reviews: list[ReviewLine] = []
    # The catalogue's limits of the case's products (its order's and its bags'), as the catalogue holds
    # them when the record is generated; changes to them are in the audit trail.
    products: list[ProductLimits] = []
    # An investigational case's trial (its subject identifier is the pseudonym); None for any other case.
    trial: TrialFields | None = None

    def site(self, code: str) -> SiteInfo | None:
        return next((s for s in self.sites if s.code == code), None)


async def case_record(pool: Pool, principal: Principal, coi: str) -> CaseRecord:
    """The record of a case visible to `principal` (404 otherwise), with patient fields only for those
    who may see them."""
    case = await case_service.get_case(pool, principal, coi)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return await load_record(
            conn,
            case.coi,
            patient_visible=sees_patient_fields(principal, case.treatment_site),
            requested_by=principal.full_name,
        )


async def load_record(conn: Conn, coi: str, *, patient_visible: bool, requested_by: str) -> CaseRecord:
    """Must run in one (read-only, repeatable read) transaction for a consistent record."""
    case = await cases.get_case(conn, coi)
    if case is None:
        raise NotFound(f"no case with COI {coi}")
    stored = await events.events_of_case(conn, coi)
    directory = record_keys.checkpoint_dir()
    latest = await checkpoints.latest_for(conn, directory) if directory is not None else None
    verdict = await chain_verify.verify(conn, coi, latest=latest)
    units = await cases.units_of_case(conn, coi)
    product_limits = await _products(conn, coi, units)
    legs = await shipments.of_case(conn, coi)
    alerts = await exports.alerts_of_case(conn, coi)
    counterparts = sorted({e.record.counterpart_id for e in stored if e.record.counterpart_id is not None})
    names = await exports.user_names(conn, counterparts)
    series = {
        leg.id: await exports.readings_of_shipment(conn, leg.id, None, None, MAX_LEG_READINGS + 1)
        for leg in legs
    }
    intervals = {leg.id: await excursion_repo.sample_interval(conn, leg.logger_id) for leg in legs}
    known_sites = await sites.list_all(conn)
    zones = {s.code: s.time_zone for s in known_sites}
    lines = [_event_line(e.id, e.hash, e.record, names, zones.get(e.record.site)) for e in stored]
    corrected_by: dict[int, list[int]] = {}
    for line in lines:
        if line.corrects is not None:
            corrected_by.setdefault(line.corrects, []).append(line.id)
    lines = [msgspec.structs.replace(line, corrected_by=corrected_by.get(line.id, [])) for line in lines]
    used = (
        {case.treatment_site}
        | {line.site for line in lines}
        | {s for leg in legs for s in (leg.from_site, leg.to_site)}
    )
    return CaseRecord(
        coi=case.coi,
        barcode=Coi.from_value(case.coi).barcode,
        eye_readable=Coi.from_value(case.coi).eye_readable,
        treatment_site=case.treatment_site,
        therapy=case.therapy,
        status=case.status,
        created_at=case.created_at,
        patient=patient_fields(case) if patient_visible else None,
        trial=trial_fields(case),
        patient_withheld=not patient_visible,
        sites=[SiteInfo(s.code, s.name, s.kind, s.time_zone, s.gln) for s in known_sites if s.code in used],
        units=[_unit_line(u) for u in units],
        legs=[
            _leg(leg, [(r.ts, r.temp_c) for r in series[leg.id]], alerts, intervals[leg.id]) for leg in legs
        ],
        events=lines,
        alerts=[_alert_line(a) for a in alerts],
        corrections=_corrections(lines),
        corrected=verdict.corrected,
        chain=ChainVerdict(
            verdict.ok,
            verdict.events,
            verdict.head_hash,
            verdict.message,
            verdict.first_break,
            verdict.status,
            _coverage(verdict),
            verdict.state_mismatches,
        ),
        generated_at=datetime.now(UTC),
        generated_for=requested_by,
        genealogy=_genealogy(lines),
        deviations=_deviations(lines),
        holds=_holds(lines),
        deviation_records=_deviation_records(lines),
        cancellation=_cancellation(lines),
        reviews=_reviews(lines),
        products=product_limits,
    )


def local_time(moment: datetime | None, zone_name: str | None) -> str:
    """`moment` in the named zone with its abbreviation and the zone's name ('' when it has no zone)."""
    if moment is None or not zone_name:
        return ""
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return ""
    here = moment.astimezone(zone)
    return f"{here:%Y-%m-%d %H:%M:%S} {here.tzname()} ({zone_name})"


def _data(line: EventLine) -> dict[str, Any]:
    return line.data if isinstance(line.data, dict) else {}


def _genealogy(lines: list[EventLine]) -> list[GenealogyLine]:
    return [
        GenealogyLine(
            unit_id,
            [str(u) for u in _data(line)["from_units"]],
            line.seq,
            line.actor,
            line.server_time,
            line.site,
        )
        for line in lines
        if line.action == "unit_registered" and line.outcome == "accepted" and _data(line).get("from_units")
        for unit_id in line.unit_ids
    ]


def _deviations(lines: list[EventLine]) -> list[DeviationLine]:
    return [
        DeviationLine(
            line.seq,
            line.shipment_id,
            str(_data(line)["deviation"]),
            [int(a) for a in _data(line).get("excursion_alerts") or []],
            line.signatures,
            line.server_time,
        )
        for line in lines
        if line.outcome == "accepted" and _data(line).get("deviation")
    ]


# Steps that put a unit on hold or release it (services/holds.py), in words.
_HOLD_STEPS: Final = {"hold": "placed on hold", "hold_released": "released from hold"}


def _holds(lines: list[EventLine]) -> list[HoldLine]:
    found = []
    for line in lines:
        if line.outcome != "accepted":
            continue
        data = _data(line)
        if line.action in _HOLD_STEPS:
            what = _HOLD_STEPS[line.action]
        elif line.action == "receipt" and data.get("decision") == "quarantine":
            what = "quarantined at receipt"
        else:
            continue
        reason = data.get("reason") or data.get("comment")
        found.append(
            HoldLine(line.seq, line.unit_ids, what, reason, line.actor, line.server_time, line.signatures)
        )
    return found


def _deviation_records(lines: list[EventLine]) -> list[DeviationRecordLine]:
    seq_of = {line.id: line.seq for line in lines}
    found = []
    for line in lines:
        if line.action != "deviation" or line.outcome != "accepted":
            continue
        data = _data(line)
        concerns = [seq_of.get(int(i), int(i)) for i in data.get("events") or []]
        found.append(
            DeviationRecordLine(
                line.seq,
                str(data.get("description") or ""),
                str(data.get("impact") or ""),
                str(data.get("disposition") or ""),
                concerns,
                line.actor,
                line.server_time,
                line.signatures,
            )
        )
    return found


def _cancellation(lines: list[EventLine]) -> CancellationLine | None:
    for line in lines:
        if line.action == CASE_CANCELLED and line.outcome == "accepted":
            reason = str(_data(line).get("reason") or "")
            return CancellationLine(line.seq, reason, line.actor, line.server_time, line.signatures)
    return None


def _reviews(lines: list[EventLine]) -> list[ReviewLine]:
    last = lines[-1].seq if lines else 0
    found = []
    for line in lines:
        if line.action != case_service.RECORD_REVIEWED or line.outcome != "accepted":
            continue
        data = _data(line)
        found.append(
            ReviewLine(
                seq=line.seq,
                signature=line.signatures[0] if line.signatures else None,
                events_reviewed=int(data.get("events") or 0),
                head_hash=data.get("head_hash"),
                comment=data.get("comment"),
                local_time=line.local_time,
                later_events=last - line.seq,
            )
        )
    return found


def _coverage(verdict: chain_verify.Verification) -> str:
    """Which external checkpoint holds this chain's last event: what a reader can check the printed
    final hash against, outside this server's database."""
    found = verdict.checkpoint
    if found is None:
        return "no checkpoint yet"
    where = f"checkpoint {found['file']} of {found['created_at']}"
    if found.get("authenticity") != "authentic":
        return f"{where} cannot be relied on ({found.get('authenticity')})"
    if found.get("contradiction"):
        return f"{where} CONTRADICTS this chain: {found['contradiction']}"
    covers = int(found.get("covers", 0))
    if covers == 0:
        return f"no checkpoint yet covers this case (latest: {where})"
    if covers < verdict.events:
        return f"{where} covers events 1 to {covers}; events {covers + 1} to {verdict.events} are newer"
    return f"{where} covers the last event ({covers})"


def _unit_line(unit: UnitRow) -> UnitLine:
    return UnitLine(
        id=unit.id,
        kind=unit.kind,
        din=unit.din,
        product=unit.product,
        status=unit.status,
        site=unit.site,
        storage_location=unit.storage_location,
        released=unit.released,
        quarantined=unit.quarantined,
        expires_at=unit.expires_at,
        thawed_at=unit.thawed_at,
        catalogue_product=unit.catalogue_product,
        manufactured_at=unit.manufactured_at,
    )


async def _products(conn: Conn, coi: str, units: list[UnitRow]) -> list[ProductLimits]:
    codes = {u.catalogue_product for u in units if u.catalogue_product}
    if (ordered := await products.ordered_product(conn, coi)) is not None:
        codes.add(ordered)
    found = [await products.limits(conn, code) for code in sorted(codes)]
    return [limits for limits in found if limits is not None]


def _event_line(
    event_id: int, digest: bytes, record: Any, names: dict[int, str], zone: str | None
) -> EventLine:
    return EventLine(
        id=event_id,
        seq=record.seq,
        server_time=record.server_time,
        device_time=record.device_time,
        action=record.action,
        outcome=record.outcome,
        refusal=record.refusal,
        detail=record.detail,
        actor=record.actor_name,
        site=record.site,
        shipment_id=record.shipment_id,
        unit_ids=list(record.unit_ids),
        counterpart=names.get(record.counterpart_id) if record.counterpart_id is not None else None,
        signatures=[
            SignatureLine(s.printed_name, s.username, s.role, s.meaning, s.signed_at)
            for s in record.signatures
        ],
        data=record.data,
        corrects=record.corrects,
        corrected_by=[],
        hash=digest.hex(),
        gps=record.gps,
        local_time=local_time(record.server_time, zone),
    )


def _is_temperature_alert(alert: AlertEntry) -> bool:
    return alert.kind in TEMPERATURE_ALERT_KINDS or alert.kind.startswith("temperature")


def _leg(
    leg: ShipmentRow, series: list[tuple[datetime, float]], alerts: list[AlertEntry], interval_s: int | None
) -> TemperatureLeg:
    truncated = len(series) > MAX_LEG_READINGS
    series = series[:MAX_LEG_READINGS]
    low, high = leg.profile.get("low_c"), leg.profile.get("high_c")
    # Data gaps (issue 20): neither in nor out of range; the summary lists them and excursions end there.
    summary = summarise(
        series,
        low,
        high,
        bool(leg.profile.get("mkt_hours")),
        gap_starts=excursion_service.gap_starts((ts for ts, _ in series), interval_s),
    )
    found = find_excursions(series, low, high, summary.gaps)
    temperature_alerts = [a.id for a in alerts if a.shipment_id == leg.id and _is_temperature_alert(a)]
    return TemperatureLeg(
        shipment_id=leg.id,
        from_site=leg.from_site,
        to_site=leg.to_site,
        container_id=leg.container_id,
        logger_id=leg.logger_id,
        profile=f"{leg.profile_code} v{leg.profile_version}",
        low_c=low,
        high_c=high,
        status=leg.status,
        planned_departure=leg.planned_departure,
        planned_arrival=leg.planned_arrival,
        departed_at=leg.departed_at,
        arrived_at=leg.arrived_at,
        received_at=leg.received_at,
        units=list(leg.manifest),
        summary=summary,
        excursions=found,
        temperature_alerts=temperature_alerts,
        alarm=bool(found or temperature_alerts),
        readings=series,
        readings_truncated=truncated,
    )


def _alert_line(alert: AlertEntry) -> AlertLine:
    return AlertLine(
        id=alert.id,
        kind=alert.kind,
        severity=alert.severity,
        status=alert.status,
        title=alert.title,
        detail=alert.detail,
        shipment_id=alert.shipment_id,
        unit_id=alert.unit_id,
        started_at=alert.started_at,
        ended_at=alert.ended_at,
        peak_value=alert.peak_value,
        acknowledged_by=alert.acknowledged_by,
        acknowledged_at=alert.acknowledged_at,
        ack_comment=alert.ack_comment,
        closed_by=alert.closed_by,
        closed_at=alert.closed_at,
        close_reason=alert.close_reason,
    )


def _corrections(lines: list[EventLine]) -> list[CorrectionLine]:
    seq_of = {line.id: line.seq for line in lines}
    found = []
    for line in lines:
        if line.corrects is None:
            continue
        data = line.data if isinstance(line.data, dict) else {}
        found.append(
            CorrectionLine(
                event_id=line.id,
                seq=line.seq,
                corrects_event_id=line.corrects,
                corrects_seq=seq_of.get(line.corrects),
                reason=data.get("reason"),
                fields=data.get("fields"),
                actor=line.actor,
                at=line.server_time,
            )
        )
    return found
