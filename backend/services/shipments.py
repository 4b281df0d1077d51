"""Shipments: planning, the pharmacist's receipt view and the signed receipt decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from backend.db.repo import alerts, audit, cases, shipments, sites
from backend.db.repo import excursions as excursion_repo
from backend.db.repo import users as users_repo
from backend.db.repo.shipments import ShipmentRow
from backend.db.types import Conn, Pool
from backend.domain import alarm_states
from backend.domain.access import Principal, Role
from backend.domain.custody import (
    RECEIPT_BLOCKING_ALERTS,
    RECEIPT_OVERRIDE_ROLES,
    Refusal,
    receipt_decision,
)
from backend.domain.errors import Conflict, InvalidInput, PermissionDenied
from backend.domain.temperature import Summary, summarise
from backend.services import alerting, objects, organisations, outbox_events, signing
from backend.services import chain as chains
from backend.services.cases import get_case
from backend.services.loggers import calibration_alert_needed, claim_for_shipment, logger_busy
from backend.services.visibility import site_filter
from celltrail_shared.identifiers import ShipmentId

PLANNERS = frozenset({Role.COORDINATOR, Role.MANUFACTURING, Role.PHARMACIST})
_NAMED_WITH_PLAN = "named with the shipment's plan"


async def create_shipment(
    pool: Pool,
    actor: Principal,
    *,
    coi: str,
    from_site: str,
    to_site: str,
    container_id: str,
    logger_id: str | None,
    profile: str,
    planned_departure: datetime,
    planned_arrival: datetime,
    unit_ids: list[str],
    seals: list[str],
    waybill: str | None,
    courier_organisation: str | None = None,
) -> ShipmentRow:
    """`courier_organisation`: the courier company that carries the leg, named with the plan as
    `PUT /shipments/{id}/courier` would name it (docs/organisations.md)."""
    case = await get_case(pool, actor, coi)
    if not actor.at_site(from_site) and not actor.at_site(to_site):
        raise PermissionDenied(f"you are assigned to neither {from_site} nor {to_site}")
    if from_site == to_site:
        # The schema's CHECK (from_site <> to_site) would refuse it too, but as a database error.
        raise InvalidInput(
            f"a shipment goes from one site to another, not from {from_site} to itself",
            field_errors={"to_site": "same as from_site"},
        )
    if planned_arrival <= planned_departure:
        raise InvalidInput(
            "the planned arrival must be after the planned departure",
            field_errors={"planned_arrival": "before departure"},
        )
    if not unit_ids:
        raise InvalidInput("a shipment carries at least one unit", field_errors={"units": "empty"})
    async with pool.acquire() as conn, conn.transaction():
        chain = await chains.lock(conn, case.coi)
        for code in (from_site, to_site):
            if await sites.get(conn, code) is None:
                raise InvalidInput(f"unknown site {code}", field_errors={"sites": f"unknown {code}"})
        # Through the gate: a unit of a case the planner cannot see is an unknown unit.
        found = await cases.lock_visible_units(conn, unit_ids, [], site_filter(actor))
        missing = sorted(set(unit_ids) - {u.id for u in found})
        if missing:
            raise InvalidInput(f"unknown unit {', '.join(missing)}", field_errors={"units": "unknown"})
        for unit in found:
            if unit.coi != case.coi:
                raise Conflict(
                    f"unit {unit.id} belongs to case {unit.coi}, not {case.coi}: one shipment "
                    "carries one patient's units"
                )
            if unit.status in ("packed", "in_transit", "infused", "disposed"):
                raise Conflict(f"unit {unit.id} is {unit.status} and cannot be planned into a shipment")
        snapshot = await shipments.profile(conn, profile, site_filter(actor))
        if snapshot is None:
            raise InvalidInput(
                f"unknown temperature profile {profile!r}", field_errors={"profile": "unknown"}
            )
        version, definition = snapshot
        if logger_id is not None:
            # Only a logger of the planner's sites (owned or lent) that is on no other active shipment:
            # otherwise this shipment would take over another site's readings.
            await claim_for_shipment(conn, actor, logger_id)
        shipment_id = ShipmentId(year=planned_departure.year, sequence=await shipments.next_number(conn)).text
        inserted = await shipments.insert(
            conn,
            {
                "id": shipment_id,
                "coi": case.coi,
                "from_site": from_site,
                "to_site": to_site,
                "container_id": container_id,
                "logger_id": logger_id,
                "profile_code": profile,
                "profile_version": version,
                "profile": definition,
                "planned_departure": planned_departure,
                "planned_arrival": planned_arrival,
                "seals": seals,
                "waybill": waybill,
            },
            unit_ids,
        )
        if not inserted:
            # A concurrent plan took the logger between the check and the insert (the index refused).
            raise Conflict(logger_busy(actor, str(logger_id), None), field_errors={"logger_id": "in use"})
        await cases.assign_shipment(conn, unit_ids, shipment_id)
        appended = await chains.append(
            conn,
            chain,
            action="shipment_planned",
            actor=actor,
            site=from_site,
            shipment_id=shipment_id,
            unit_ids=unit_ids,
            detail=f"shipment {shipment_id} planned from {from_site} to {to_site}",
            data={
                "container_id": container_id,
                "logger_id": logger_id,
                "profile": f"{profile} v{version}",
                "seals": seals,
                "waybill": waybill,
            },
        )
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action="create",
            entity="shipment",
            entity_id=shipment_id,
            new_value={"from": from_site, "to": to_site, "units": unit_ids, "logger": logger_id},
        )
        calibration = (
            await calibration_alert_needed(conn, logger_id, planned_arrival)
            if logger_id is not None
            else None
        )
        if calibration is not None:
            await alerting.raise_alert(
                conn,
                kind="calibration_overdue",
                severity="warning",
                title=f"Logger {logger_id} is due for calibration",
                detail=f"{calibration}; it is assigned to shipment {shipment_id}: replace or recalibrate it",
                condition_key=f"calibration:{logger_id}:{shipment_id}",
                sites=[from_site, to_site],
                coi=case.coi,
                shipment_id=shipment_id,
                event_id=appended.event_id,
            )
        await outbox_events.announce(
            conn,
            "shipment",
            [from_site, to_site],
            case.coi,
            {"shipment_id": shipment_id, "status": "planned"},
        )
        return await _planned(conn, actor, shipment_id, courier_organisation, chain)


async def _planned(
    conn: Conn, actor: Principal, shipment_id: str, courier: str | None, chain: chains.LockedChain
) -> ShipmentRow:
    """The leg just planned, with its courier company when one was named."""
    created = await shipments.get(conn, shipment_id)
    assert created is not None
    if courier is None:
        return created
    await organisations.record_courier(conn, actor, created, courier, _NAMED_WITH_PLAN, chain)
    named = await shipments.get(conn, shipment_id)
    assert named is not None
    return named


async def get_shipment(pool: Pool, principal: Principal, shipment_id: str) -> ShipmentRow:
    async with pool.acquire() as conn:
        return await objects.shipment(conn, principal, shipment_id)


async def list_shipments(
    pool: Pool, principal: Principal, active_only: bool, limit: int
) -> list[ShipmentRow]:
    async with pool.acquire() as conn:
        courier = principal.organisation if principal.carries(principal.organisation) else None
        return await shipments.list_for(conn, site_filter(principal), active_only, limit, courier)


def _limits(profile: Any) -> tuple[float | None, float | None, bool]:
    return profile.get("low_c"), profile.get("high_c"), bool(profile.get("mkt_hours"))


async def temperature_summary(pool: Pool, shipment: ShipmentRow) -> Summary:
    from backend.services import excursions  # imports this module

    async with pool.acquire() as conn:
        series = await shipments.temperature_rows(conn, shipment.id)
        interval = await excursion_repo.sample_interval(conn, shipment.logger_id)
    low, high, mkt = _limits(shipment.profile)
    # Data gaps count neither in nor out of range, and the receipt names them (issue 20).
    starts = excursions.gap_starts((ts for ts, _ in series), interval)
    return summarise(series, low, high, mkt, gap_starts=starts)


class ReceiptView(msgspec.Struct, frozen=True):
    shipment: ShipmentRow
    expected: list[str]
    scanned: list[str]
    missing: list[str]
    temperature: Summary
    open_alerts: list[Any]
    checklist: list[str]


CHECKLIST = ("seals_intact", "shipper_intact", "temperature_reviewed")


async def receipt_view(pool: Pool, principal: Principal, shipment_id: str) -> ReceiptView:
    shipment = await get_shipment(pool, principal, shipment_id)
    summary = await temperature_summary(pool, shipment)
    async with pool.acquire() as conn:
        open_alerts = await alerts.list_for(
            conn, None, list(alarm_states.NEEDS_ATTENTION), None, shipment.id, 100
        )
    return ReceiptView(
        shipment=shipment,
        expected=shipment.manifest,
        scanned=shipment.receipt_scanned,
        missing=sorted(set(shipment.manifest) - set(shipment.receipt_scanned)),
        temperature=summary,
        open_alerts=open_alerts,
        checklist=list(CHECKLIST),
    )


class QaOverride(msgspec.Struct, frozen=True):
    username: str
    password: str
    deviation: str


async def _qa_override(
    conn: Any, actor: Principal, shipment: ShipmentRow, override: QaOverride, at: datetime
) -> Any:
    """QA's signature for accepting despite the excursion: someone other than the receiver, holding the QA
    role at one of the leg's two sites (the hospital's QA or the manufacturer's)."""
    name = override.username.strip().lower()
    if name == actor.username:
        raise Refusal("signature_required", "the QA override is signed by QA, not by the person receiving")
    signer = await users_repo.by_username(conn, name)
    leg = (shipment.to_site, shipment.from_site)
    # A signer bound to neither site is refused by `sign`, with the same answer as any other refusal.
    site = next((s for s in leg if signer is not None and s in signer.sites), shipment.to_site)
    return await signing.sign(
        conn, name, override.password, "accepted with deviation", RECEIPT_OVERRIDE_ROLES, at, site
    )


async def decide_receipt(
    pool: Pool,
    actor: Principal,
    shipment_id: str,
    *,
    accept: bool,
    checklist: dict[str, bool],
    comment: str | None,
    password: str,
    qa_override: QaOverride | None = None,
) -> chains.Appended:
    shipment = await get_shipment(pool, actor, shipment_id)
    if not actor.at_site(shipment.to_site):
        raise PermissionDenied(f"receipt of {shipment_id} is decided at {shipment.to_site}")
    unanswered = [item for item in CHECKLIST if item not in checklist]
    if unanswered:
        raise InvalidInput(
            f"answer every checklist item: {', '.join(unanswered)}", field_errors={"checklist": "incomplete"}
        )
    if accept and not all(checklist[item] for item in CHECKLIST):
        failed = [item for item in CHECKLIST if not checklist[item]]
        raise Conflict(f"cannot accept with a failed check ({', '.join(failed)}); quarantine the shipment")
    meaning = "received and verified" if accept else "quarantined"
    async with pool.acquire() as conn, conn.transaction():
        chain = await chains.lock(conn, shipment.coi)
        current = await shipments.get(conn, shipment_id, lock=True)
        assert current is not None
        at = chains.now()
        blocking = await alerts.unresolved_on_shipment(
            conn, shipment_id, sorted(RECEIPT_BLOCKING_ALERTS), "critical"
        )
        if accept and blocking and qa_override is None:
            raise Conflict(
                f"shipment {shipment_id} has an unresolved critical excursion ("
                + "; ".join(title for _id, title in blocking)
                + "): quarantine it, or accept it with a QA signature that states the deviation"
            )
        try:
            case = await cases.get_case(conn, current.coi)
            change = receipt_decision(current.state(), accept, case.status if case else "open")
            signatures = [
                await signing.sign(
                    conn,
                    actor.username,
                    password,
                    meaning,
                    frozenset({Role.PHARMACIST, Role.MANUFACTURING}),
                    at,
                    current.to_site,
                )
            ]
            if accept and blocking and qa_override is not None:
                signatures.append(await _qa_override(conn, actor, current, qa_override, at))
        except Refusal as refusal:
            # A signature that does not verify is the signer's to correct; anything else is the record's
            # state refusing the receipt.
            raise (
                InvalidInput(refusal.detail, field_errors={"password": "wrong"})
                if refusal.code in signing.SIGNATURE_REFUSALS
                else Conflict(refusal.detail)
            ) from None
        units = list(change.unit_status)
        await cases.set_unit_status(conn, units, "received")
        await cases.move_units(conn, units, current.to_site, actor.user_id)
        if not accept:
            await cases.set_quarantined(conn, units, True)
        assert change.shipment_status is not None
        await shipments.set_status(conn, shipment_id, change.shipment_status)
        await shipments.set_holder(conn, shipment_id, actor.user_id)
        appended = await chains.append(
            conn,
            chain,
            action="receipt",
            actor=actor,
            site=current.to_site,
            shipment_id=shipment_id,
            unit_ids=units,
            detail=change.detail,
            signatures=signatures,
            server_time=at,
            data={
                "decision": "accept" if accept else "quarantine",
                "checklist": checklist,
                "comment": comment,
            }
            | (
                {"deviation": qa_override.deviation, "excursion_alerts": [i for i, _title in blocking]}
                if accept and blocking and qa_override is not None
                else {}
            ),
        )
        if not accept:
            await alerting.raise_alert(
                conn,
                kind="quarantine",
                severity="critical",
                title=f"Shipment {shipment_id} quarantined",
                detail=f"{actor.full_name} quarantined {shipment_id} at receipt: {comment or 'no comment'}",
                condition_key=f"quarantine:{shipment_id}",
                sites=[current.from_site, current.to_site],
                coi=current.coi,
                shipment_id=shipment_id,
                event_id=appended.event_id,
            )
        await outbox_events.announce(
            conn,
            "shipment",
            [current.from_site, current.to_site],
            current.coi,
            {"shipment_id": shipment_id, "status": change.shipment_status},
        )
    return appended
