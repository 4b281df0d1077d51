"""Cases (therapy orders), their units, QA release and corrections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from backend.db.repo import audit, cases, events, shipments
from backend.db.repo.cases import CaseRow, UnitRow
from backend.db.types import Conn, Pool
from backend.domain.access import Principal, Role
from backend.domain.custody import Refusal, check_open
from backend.domain.errors import Conflict, InvalidInput, PermissionDenied
from backend.domain.replay import CASE_CANCELLED, CONSUME
from backend.domain.trials import Trial
from backend.services import chain as chains
from backend.services import chain_verify, checkpoints, objects, signing, trials, unit_registry
from backend.services.case_opening import NewCase, open_case
from backend.services.outbox_events import announce
from backend.services.planning import catalogue
from celltrail_shared.identifiers import IdentifierError, UnitId, parse_coi, parse_din

# How far ahead of the server's clock a registered manufacture time may be (a device's clock drift).
_MANUFACTURE_SKEW = timedelta(minutes=5)


async def create_case(
    pool: Pool,
    actor: Principal,
    *,
    treatment_site: str,
    therapy: str,
    patient_ref: str | None,
    birth_year: int | None,
    fin: str,
    trial: Trial | None = None,
    client: str | None = None,
) -> CaseRow:
    """`client`: the client organisation the case is made for, named as `PUT /cases/{coi}/client` would."""
    from backend.services import organisations  # imports this module

    trials.check_new_case(trial, patient_ref, birth_year)
    if not actor.at_site(treatment_site) and Role.ADMIN not in actor.roles:
        raise PermissionDenied(f"you are not assigned to site {treatment_site}")
    async with pool.acquire() as conn, conn.transaction():
        new = NewCase(
            treatment_site=treatment_site,
            therapy=therapy,
            fin=fin,
            patient_ref=patient_ref,
            birth_year=birth_year,
            trial=trial,
        )
        coi = await open_case(conn, actor, new)
        if client is not None:
            await organisations.record_client(conn, actor, coi, client, [treatment_site])
        await announce(conn, "case", [treatment_site], coi, {"coi": coi, "status": "open"})
        created = await cases.get_case(conn, coi)
    assert created is not None
    return created


async def get_case(pool: Pool, principal: Principal, coi_text: str) -> CaseRow:
    coi = parse_coi_value(coi_text)
    async with pool.acquire() as conn:
        return await objects.case(conn, principal, coi)


def parse_coi_value(text: str) -> str:
    try:
        return parse_coi(text).value
    except IdentifierError as exc:
        raise InvalidInput(str(exc), field_errors={"coi": exc.reason}) from None


async def list_cases(pool: Pool, principal: Principal, limit: int) -> list[CaseRow]:
    async with pool.acquire() as conn:
        if principal.read_only:  # a client's users: the cases made for their organisation
            return await objects.client_cases(conn, principal, limit)
        return await cases.list_cases(conn, await objects.case_sites(conn, principal), limit)


async def create_unit(
    pool: Pool,
    actor: Principal,
    coi_text: str,
    *,
    kind: str,
    product: str,
    din: str | None,
    expires_at: datetime | None,
    site: str,
    from_units: list[str] | None = None,
    product_code: str | None = None,
    lot: str | None = None,
    volume: str | None = None,
    catalogue_product: str | None = None,
    manufactured_at: datetime | None = None,
) -> UnitRow:
    """Register a bag. A product bag (PRC) names the starting material it was made from (`from_units`):
    the case's own apheresis units, received (or stored) at the registering manufacturing site, or
    already consumed into an earlier bag of the same manufacture. The registration records the inputs,
    and a `consume` entry in the same transaction leaves each input consumed (no further custody step).

    A product bag is of the catalogue product the case's order names (or `catalogue_product`): its expiry
    is its manufacture (`manufactured_at`, default now) plus the product's shelf life, or an earlier
    `expires_at`; a later one is refused."""
    case = await get_case(pool, actor, coi_text)
    inputs = sorted(set(from_units or []))
    # A time without an offset is UTC, as the database would store it.
    expires_at, manufactured_at = (
        t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t
        for t in (expires_at, manufactured_at)
    )
    _check_bag(kind, inputs, catalogue_product, manufactured_at)
    unit_registry.check_registrar(actor, kind, site)
    din_text = _din_barcode(din)
    label = (product_code, lot, volume)
    to_consume: list[str] = []

    async def write(conn: Conn, unit: UnitId) -> unit_registry.Entry:
        nonlocal expires_at
        to_consume.extend(await _inputs(conn, case.coi, inputs, site) if inputs else [])
        made = (manufactured_at or chains.now()) if kind == "PRC" else None
        limits = await catalogue.unit_product(conn, case.coi, catalogue_product) if kind == "PRC" else None
        if limits is not None and made is not None:
            expires_at = catalogue.unit_expiry(limits, made, expires_at)
        product_of = (limits.code if limits else None, made)
        await cases.insert_unit(
            conn, unit.text, case.coi, kind, din_text, product, expires_at, site, label, product_of
        )
        data = {
            "kind": kind,
            "product": product,
            "din": din_text,
            "expires_at": expires_at.isoformat() if expires_at else None,
            **({"from_units": inputs} if inputs else {}),
            **{k: v for k, v in zip(("product_code", "lot", "volume"), label, strict=True) if v},
            **({"catalogue_product": limits.code} if limits else {}),
            **({"manufactured_at": made.isoformat()} if made else {}),
        }
        return unit_registry.Entry(f"registered {unit.text} ({product})", data)

    async def consume(conn: Conn, unit: UnitId) -> None:
        if to_consume:
            await cases.set_unit_status(conn, to_consume, "consumed")
            await chains.append(
                conn,
                await chains.lock(conn, case.coi),
                action=CONSUME,
                actor=actor,
                site=site,
                detail=f"{', '.join(to_consume)} consumed into {unit.text}",
                unit_ids=to_consume,
                data={"into": unit.text},
            )

    return await unit_registry.register(pool, actor, case, kind=kind, site=site, write=write, then=consume)


def _check_bag(
    kind: str, inputs: list[str], catalogue_product: str | None, manufactured_at: datetime | None
) -> None:
    """What only a product bag has (a catalogue product, a manufacture time, inputs), and must have."""
    if kind != "PRC" and (catalogue_product is not None or manufactured_at is not None):
        field = "catalogue_product" if catalogue_product is not None else "manufactured_at"
        raise InvalidInput(
            "only a product bag is of a catalogue product and has a manufacture time",
            field_errors={field: "not allowed"},
        )
    if manufactured_at is not None and manufactured_at > chains.now() + _MANUFACTURE_SKEW:
        raise InvalidInput(
            f"manufactured_at {manufactured_at.isoformat()} is in the future",
            field_errors={"manufactured_at": "in the future"},
        )
    if kind != "PRC" and inputs:
        raise InvalidInput(
            "only a product bag is made from other units", field_errors={"from_units": "not allowed"}
        )
    if kind == "PRC" and not inputs:
        raise InvalidInput(
            "a product bag names the starting material it was made from (from_units: the apheresis unit "
            "or units received at the manufacturing site)",
            field_errors={"from_units": "required"},
        )


def _din_barcode(din: str | None) -> str | None:
    if din is None:
        return None
    try:
        return parse_din(din).barcode
    except IdentifierError as exc:
        raise InvalidInput(str(exc), field_errors={"din": exc.reason}) from None


# The statuses in which starting material may go into a product: at the site, out of its shipment, or
# already consumed into an earlier bag of the same manufacture.
_USABLE_INPUT = frozenset({"received", "stored", "consumed"})


async def _inputs(conn: Conn, coi: str, inputs: list[str], site: str) -> list[str]:
    """Check each input of a product bag; the ones not yet consumed (to consume now)."""
    found = {u.id: u for u in await cases.units_by_ids(conn, inputs, lock=True)}
    fresh = []
    for unit_id in inputs:
        unit = found.get(unit_id)
        if unit is None or unit.coi != coi:
            raise Conflict(
                f"{unit_id} is not starting material of case {coi}: a product is made only from its own "
                "patient's material"
            )
        if unit.kind != "APH":
            raise Conflict(f"{unit_id} is {unit.kind}, not apheresis starting material")
        if unit.status not in _USABLE_INPUT:
            planned = f", planned for shipment {unit.shipment_id}" if unit.shipment_id else ""
            raise Conflict(
                f"{unit_id} is {unit.status.replace('_', ' ')}{planned}, not received at the manufacturing "
                "site: a product is registered only from starting material whose receipt was recorded there"
            )
        if unit.quarantined:
            raise Conflict(f"{unit_id} was quarantined at receipt: it does not go into a product")
        if unit.site != site:
            raise Conflict(f"{unit_id} is at {unit.site or 'no site (in transit)'}, not at {site}")
        if unit.status != "consumed":
            fresh.append(unit_id)
    return fresh


async def get_unit(pool: Pool, principal: Principal, unit_id: str) -> UnitRow:
    async with pool.acquire() as conn:
        unit, _case = await objects.unit(conn, principal, unit_id)
    return unit


async def release_unit(pool: Pool, actor: Principal, unit_id: str, *, password: str) -> chains.Appended:
    """QA release of a product bag: a `qa` signature with the meaning 'released'."""
    unit = await get_unit(pool, actor, unit_id)
    if unit.kind != "PRC":
        raise Conflict(f"only product bags are released; {unit_id} is {unit.kind}")
    if unit.released:
        raise Conflict(f"{unit_id} is already released")
    if unit.site is None or not actor.at_site(unit.site):
        raise PermissionDenied(f"QA release of {unit_id} happens at {unit.site}")
    async with pool.acquire() as conn, conn.transaction():
        chain = await chains.lock(conn, unit.coi)
        case = await cases.get_case(conn, unit.coi)
        try:
            check_open(case.status if case else "open", "release")
        except Refusal as refusal:
            raise Conflict(refusal.detail) from None
        at = chains.now()
        try:
            signature = await signing.sign(
                conn, actor.username, password, "released", frozenset({Role.QA}), at, unit.site
            )
        except Refusal as refusal:
            raise InvalidInput(refusal.detail, field_errors={"password": "wrong"}) from None
        await cases.set_released(conn, unit_id)
        appended = await chains.append(
            conn,
            chain,
            action="release",
            actor=actor,
            site=unit.site,
            detail=f"QA released {unit_id}",
            unit_ids=[unit_id],
            signatures=[signature],
            server_time=at,
        )
        await announce(conn, "unit", [unit.site], unit.coi, {"unit_id": unit_id, "released": True})
    return appended


async def cancel_case(
    pool: Pool, actor: Principal, coi_text: str, *, reason: str, password: str
) -> chains.Appended:
    """Cancel an open case (the patient withdrew, manufacturing failed...): a coordinator's or QA's
    signature with the meaning 'cancelled' and the reason, by someone bound to one of the case's sites.
    The case then takes no further custody steps but disposal of what is left and QA corrections."""
    async with pool.acquire() as conn, conn.transaction():
        case = await objects.case(conn, actor, coi_text)
        site = next((s for s in [case.treatment_site, *case.sites] if actor.at_site(s)), None)
        if site is None:
            sites = ", ".join(case.sites)
            raise PermissionDenied(f"a case is cancelled by someone bound to one of its sites ({sites})")
        chain = await chains.lock(conn, case.coi)
        current = await cases.get_case(conn, case.coi)
        assert current is not None
        if current.status != "open":
            raise Conflict(f"case {case.coi} is already {current.status}")
        at = chains.now()
        try:
            signature = await signing.sign(
                conn, actor.username, password, "cancelled", frozenset({Role.COORDINATOR, Role.QA}), at, site
            )
        except Refusal as refusal:
            raise InvalidInput(refusal.detail, field_errors={"password": "wrong"}) from None
        await cases.set_case_status(conn, case.coi, "cancelled")
        appended = await chains.append(
            conn,
            chain,
            action=CASE_CANCELLED,
            actor=actor,
            site=site,
            detail=f"case cancelled: {reason}",
            data={"reason": reason},
            signatures=[signature],
            server_time=at,
        )
        await announce(conn, "case", case.sites, case.coi, {"coi": case.coi, "status": "cancelled"})
    return appended


RECORD_REVIEWED = "record_reviewed"


async def review_record(
    pool: Pool, actor: Principal, coi_text: str, *, password: str, comment: str | None
) -> chains.Appended:
    """QA signs that it reviewed the case's record ('record reviewed'), by someone bound to one of the
    case's sites. The event keeps how far the chain reached (its length and head hash) when QA signed, so
    the printed record shows what the signature covers and what came after."""
    async with pool.acquire() as conn, conn.transaction():
        case = await objects.case(conn, actor, coi_text)
        site = next((s for s in [case.treatment_site, *case.sites] if actor.at_site(s)), None)
        if site is None:
            sites = ", ".join(case.sites)
            raise PermissionDenied(f"a record is reviewed by QA bound to one of the case's sites ({sites})")
        chain = await chains.lock(conn, case.coi)
        assert chain is not None
        at = chains.now()
        try:
            signature = await signing.sign(
                conn, actor.username, password, "record reviewed", frozenset({Role.QA}), at, site
            )
        except Refusal as refusal:
            raise InvalidInput(refusal.detail, field_errors={"password": "wrong"}) from None
        reviewed = {"events": chain.length, "head_hash": chain.head.hex() if chain.head else None}
        appended = await chains.append(
            conn,
            chain,
            action=RECORD_REVIEWED,
            actor=actor,
            site=site,
            detail=f"record reviewed by QA (events 1 to {chain.length})",
            data={**reviewed, "comment": comment},
            signatures=[signature],
            server_time=at,
        )
        await announce(
            conn, "event", case.sites, case.coi, {"event_id": appended.event_id, "action": RECORD_REVIEWED}
        )
    return appended


async def correct(
    pool: Pool, actor: Principal, event_id: int, *, reason: str, fields: dict[str, Any]
) -> chains.Appended:
    """A correction is a new event pointing at the old one; the old one stays as it was."""
    async with pool.acquire() as conn, conn.transaction():
        case, action = await objects.event(conn, actor, event_id)
        coi = case.coi
        appended = await chains.append(
            conn,
            await chains.lock(conn, coi),
            action="correction",
            actor=actor,
            site=case.treatment_site,
            detail=f"correction of event {event_id} ({action}): {reason}",
            corrects=event_id,
            data={"reason": reason, "fields": fields},
        )
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action="correct",
            entity="custody_event",
            entity_id=str(event_id),
            old_value=await events.recorded_values(conn, event_id, sorted(fields)),
            new_value=fields,
            reason=reason,
        )
        await announce(
            conn, "event", case.sites, coi, {"event_id": appended.event_id, "action": "correction"}
        )
    return appended


async def verify(pool: Pool, coi: str, checkpoint_dir: Path) -> chain_verify.Verification:
    """The case's verdict with this process's keyring and the newest checkpoint in `checkpoint_dir`.
    The caller has checked that the case is visible to whoever asks."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        latest = await checkpoints.latest_for(conn, checkpoint_dir)
        return await chain_verify.verify(conn, coi, latest=latest)


class Timeline(msgspec.Struct, frozen=True):
    case: CaseRow
    units: list[UnitRow]
    shipments: list[Any]
    events: list[dict[str, Any]]
    # product bag -> the starting material it was made from, as its registration recorded it
    genealogy: dict[str, list[str]] = msgspec.field(default_factory=dict)


def genealogy(records: list[Any]) -> dict[str, list[str]]:
    """Product bag -> its inputs, from the accepted registrations that name them."""
    found: dict[str, list[str]] = {}
    for record in records:
        data = record.data if isinstance(record.data, dict) else {}
        if record.action == "unit_registered" and record.outcome == "accepted" and data.get("from_units"):
            for unit_id in record.unit_ids:
                found[unit_id] = [str(u) for u in data["from_units"]]
    return found


async def timeline(pool: Pool, principal: Principal, coi_text: str) -> Timeline:
    case = await get_case(pool, principal, coi_text)
    async with pool.acquire() as conn:
        stored = await events.events_of_case(conn, case.coi)
        units = await cases.units_of_case(conn, case.coi)
        ships = await shipments.of_case(conn, case.coi)
    rendered = []
    for event in stored:
        body = msgspec.structs.asdict(event.record)
        body["signatures"] = [msgspec.structs.asdict(s) for s in event.record.signatures]
        body.update(id=event.id, hash=event.hash.hex())
        rendered.append(body)
    return Timeline(
        case=case,
        units=units,
        shipments=ships,
        events=rendered,
        genealogy=genealogy([e.record for e in stored]),
    )
