"""Labels: build the label from the record and render it. Downloading a label reads only; printing one
is a command that records the print — a reprint is custody-relevant, so every print of a bag, shipment
or wristband label is an event in the case's chain, flagged when repeated, and a logger's asset tag
print is in the audit trail."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from backend.db.repo import audit, cases, events
from backend.db.repo.cases import CaseRow, UnitRow
from backend.db.types import Conn, Pool
from backend.domain.access import Principal
from backend.domain.errors import Conflict, InvalidInput, NotFound
from backend.services import chain as chains
from backend.services import objects, patient_identity
from backend.services.loggers import usable_logger
from celltrail_shared.identifiers import Coi, Din, IdentifierError, LoggerId, ShipmentId, UnitId, parse_coi
from labels.formats import MEDIA_TYPES

_PROFILES = {"fresh": "fresh", "crt": "room", "cryo": "cryo"}


class Rendered(msgspec.Struct, frozen=True, kw_only=True):
    content: bytes
    media_type: str
    kind: str
    name: str
    fmt: str
    dpi: int
    # The case whose chain records a print; None for a logger's asset tag.
    coi: str | None


def _parse(kind: str, text: str) -> Any:
    parsers = {
        "bag": UnitId.parse,
        "shipment": ShipmentId.parse,
        "wristband": parse_coi,
        "asset": LoggerId.parse,
    }
    if kind not in parsers:
        raise NotFound(f"no label kind {kind!r}; use bag, shipment, wristband or asset")
    try:
        return parsers[kind](text)
    except IdentifierError as exc:
        raise InvalidInput(str(exc), field_errors={"id": exc.reason}) from None


async def _label_and_case(
    conn: Conn, principal: Principal, kind: str, identifier: Any
) -> tuple[Any, str | None]:
    from labels.model import (
        DEFAULT_STORAGE_TEMP,
        AssetTag,
        BagLabel,
        ShipmentLabel,
        TemperatureProfile,
        WristbandLabel,
    )

    if kind == "bag":
        unit, case = await objects.unit(conn, principal, identifier.text)
        if unit.kind == "SMP":
            return _sample_label(unit, identifier, case), unit.coi
        if unit.expires_at is None:
            raise Conflict(f"unit {unit.id} has no expiry date; a bag label must show one")
        din = Din.from_barcode(unit.din) if unit.din else None
        label: Any = BagLabel(
            coi=Coi.from_value(unit.coi),
            unit=identifier,
            product=unit.product,
            expiry=unit.expires_at,
            din=din,
            storage_temp="2 °C to 8 °C" if unit.kind == "APH" else DEFAULT_STORAGE_TEMP,
            product_code=unit.product_code,
            lot=unit.lot,
            volume=unit.volume,
            trial=_statement(case),
        )
        return label, unit.coi
    if kind == "shipment":
        shipment = await objects.shipment(conn, principal, identifier.text)
        logger = LoggerId.parse(shipment.logger_id) if shipment.logger_id else None
        label = ShipmentLabel(
            shipment=identifier,
            from_site=shipment.from_site,
            to_site=shipment.to_site,
            temperature_profile=TemperatureProfile(_PROFILES.get(shipment.profile_code, "fresh")),
            logger=logger,
        )
        return label, shipment.coi
    if kind == "wristband":
        case = await objects.case(conn, principal, identifier.value)
        return WristbandLabel(coi=identifier, trial=_statement(case)), case.coi
    # An asset tag only for a logger the caller's sites own or borrow; any other is answered exactly
    # like a logger that does not exist.
    logger_row = await usable_logger(conn, principal, identifier.text)
    description = f"Temperature logger {logger_row.model}".strip()
    return AssetTag(asset=identifier, description=description), None


def _statement(case: CaseRow) -> Any:
    """The investigational statement a trial case's labels carry (None for any other case)."""
    from labels.model import TrialStatement

    trial = case.trial
    return TrialStatement(**trial.as_data()) if trial is not None else None


def _sample_label(unit: UnitRow, identifier: UnitId, case: CaseRow) -> Any:
    """A biobank sample's small tube label (no expiry or storage temperature: research material)."""
    from labels.model import SampleLabel

    trial = case.trial
    return SampleLabel(
        coi=Coi.from_value(unit.coi),
        unit=identifier,
        description=unit.product,
        trial_register=trial.register if trial is not None else None,
    )


async def _wristband_identity(pool: Pool, principal: Principal, label: Any, case: CaseRow) -> Any:
    """The band with what the treating site's policy prints of the patient's identity, filled here from
    the encrypted record (the read is logged with reason label printing); nothing a request says adds a
    field. A band missing a field the policy requires is refused (LabelPolicyError, a ValueError)."""
    from labels.model import PatientField, WristbandLabel, check_wristband_policy

    if case.trial is not None:
        # A trial subject's band carries the subject identifier (on the label already), never identity.
        return label
    fields, identity = await patient_identity.for_wristband(pool, principal, case)
    if identity is None:
        return label
    shown = {PatientField(str(f)) for f in fields}
    band = WristbandLabel(
        coi=label.coi,
        patient_name=identity.name if PatientField.NAME in shown else None,
        date_of_birth=identity.date_of_birth if PatientField.DATE_OF_BIRTH in shown else None,
        hospital_number=identity.hospital_number if PatientField.HOSPITAL_NUMBER in shown else None,
    )
    check_wristband_policy(band, shown)
    return band


async def render(pool: Pool, principal: Principal, kind: str, filename: str, dpi: int | None) -> Rendered:
    """The label file, read-only: nothing is recorded (a download is not a print)."""
    from labels import render_label
    from labels.investigational import stock_for

    name, dot, fmt = filename.rpartition(".")
    if not dot or fmt not in MEDIA_TYPES:
        raise NotFound(f"ask for {filename}.png, .pdf or .zpl")
    identifier = _parse(kind, name)
    chosen_dpi = dpi or (203 if fmt == "zpl" else 300)
    try:
        # Building the label checks its fields too (a name too long for the stock raises ValueError).
        async with pool.acquire() as conn:
            label, coi = await _label_and_case(conn, principal, kind, identifier)
            case = await objects.case(conn, principal, coi) if kind == "wristband" and coi else None
        if case is not None:
            label = await _wristband_identity(pool, principal, label, case)
        # Rendering is CPU work of tens of milliseconds: off the event loop, other requests go on meanwhile.
        content = await asyncio.to_thread(render_label, label, fmt, chosen_dpi, stock_for(label))
    except ValueError as exc:
        raise InvalidInput(f"cannot render this label: {exc}") from None
    return Rendered(
        content=content, media_type=MEDIA_TYPES[fmt], kind=kind, name=name, fmt=fmt, dpi=chosen_dpi, coi=coi
    )


async def print_label(
    pool: Pool, principal: Principal, kind: str, filename: str, dpi: int | None
) -> Rendered:
    """Render the label and record the print; a repeat print of the same label is recorded as a reprint."""
    rendered = await render(pool, principal, kind, filename, dpi)
    name, fmt = rendered.name, rendered.fmt
    key = f"{kind}:{name}"
    async with pool.acquire() as conn, conn.transaction():
        if rendered.coi is None:
            await audit.record(
                conn,
                actor_id=principal.user_id,
                actor_name=principal.username,
                action="label_print",
                entity="logger",
                entity_id=name,
                new_value={"format": fmt, "dpi": rendered.dpi},
            )
            return rendered
        coi = rendered.coi
        chain = await chains.lock(conn, coi)
        earlier = await events.count_label_prints(conn, coi, key)
        case = await cases.get_case(conn, coi)
        assert case is not None
        await chains.append(
            conn,
            chain,
            action="label_print",
            actor=principal,
            site=case.treatment_site,
            unit_ids=[name] if kind == "bag" else [],
            shipment_id=name if kind == "shipment" else None,
            detail=f"{'reprinted' if earlier else 'printed'} {kind} label {name} ({fmt})",
            data={
                "label": key,
                "format": fmt,
                "dpi": rendered.dpi,
                "repeat": earlier > 0,
                "copy": earlier + 1,
            },
        )
    return rendered
