"""Labels for the web pages: build the label from the record, render it, and record the print — a
reprint is custody-relevant, so every print is an event in the case's chain, flagged when repeated."""

from __future__ import annotations

from typing import Any

from backend.db.repo import audit, cases, events, shipments
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.domain.errors import Conflict, InvalidInput, NotFound
from backend.domain.identifiers import Coi, Din, IdentifierError, LoggerId, ShipmentId, UnitId, parse_coi
from backend.services import ledger
from backend.services.visibility import require_visible

FORMATS = {"png": "image/png", "pdf": "application/pdf", "zpl": "application/zpl"}
_PROFILES = {"fresh": "fresh", "crt": "room", "cryo": "cryo"}


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
    pool: Pool, principal: Principal, kind: str, identifier: Any
) -> tuple[Any, str | None, list[str]]:
    from labels.model import AssetTag, BagLabel, ShipmentLabel, TemperatureProfile, WristbandLabel

    async with pool.acquire() as conn:
        if kind == "bag":
            unit = await cases.get_unit(conn, identifier.text)
            if unit is None:
                raise NotFound(f"no unit {identifier.text}")
            case = await cases.get_case(conn, unit.coi)
            assert case is not None
            require_visible(principal, case.sites, f"unit {unit.id}")
            if unit.expires_at is None:
                raise Conflict(f"unit {unit.id} has no expiry date; a bag label must show one")
            din = Din.from_barcode(unit.din) if unit.din else None
            label: Any = BagLabel(
                coi=Coi.from_value(unit.coi),
                unit=identifier,
                product=unit.product,
                expiry=unit.expires_at,
                din=din,
                **({"storage_temp": "2 °C to 8 °C"} if unit.kind == "APH" else {}),
            )
            return label, unit.coi, case.sites
        if kind == "shipment":
            shipment = await shipments.get(conn, identifier.text)
            if shipment is None:
                raise NotFound(f"no shipment {identifier.text}")
            require_visible(principal, [shipment.from_site, shipment.to_site], f"shipment {shipment.id}")
            logger = LoggerId.parse(shipment.logger_id) if shipment.logger_id else None
            label = ShipmentLabel(
                shipment=identifier,
                from_site=shipment.from_site,
                to_site=shipment.to_site,
                temperature_profile=TemperatureProfile(_PROFILES.get(shipment.profile_code, "fresh")),
                logger=logger,
            )
            return label, shipment.coi, [shipment.from_site, shipment.to_site]
        if kind == "wristband":
            case = await cases.get_case(conn, identifier.value)
            if case is None:
                raise NotFound(f"no case with COI {identifier.value}")
            require_visible(principal, case.sites, f"case {identifier.value}")
            return WristbandLabel(coi=identifier), case.coi, case.sites
        logger_row = await conn.fetchrow(
            "SELECT id, model, owner_site FROM loggers WHERE id = $1", identifier.text
        )
        if logger_row is None:
            raise NotFound(f"no logger {identifier.text}")
        description = f"Temperature logger {logger_row['model']}".strip()
        return AssetTag(asset=identifier, description=description), None, [logger_row["owner_site"] or ""]


async def print_label(pool: Pool, principal: Principal, kind: str, filename: str, dpi: int | None) -> bytes:
    from labels import render_label

    name, dot, fmt = filename.rpartition(".")
    if not dot or fmt not in FORMATS:
        raise NotFound(f"ask for {filename}.png, .pdf or .zpl")
    identifier = _parse(kind, name)
    label, coi, _sites = await _label_and_case(pool, principal, kind, identifier)
    chosen_dpi = dpi or (203 if fmt == "zpl" else 300)
    try:
        content = render_label(label, fmt, chosen_dpi)
    except ValueError as exc:
        raise InvalidInput(f"cannot render this label: {exc}") from None
    key = f"{kind}:{name}"
    async with pool.acquire() as conn, conn.transaction():
        if coi is None:
            await audit.record(
                conn,
                actor_id=principal.user_id,
                actor_name=principal.username,
                action="label_print",
                entity="logger",
                entity_id=name,
                new_value={"format": fmt, "dpi": chosen_dpi},
            )
            return content
        await cases.lock_chain(conn, coi)
        earlier = await events.count_label_prints(conn, coi, key)
        case = await cases.get_case(conn, coi)
        assert case is not None
        await ledger.append(
            conn,
            coi=coi,
            action="label_print",
            actor=principal,
            site=case.treatment_site,
            unit_ids=[name] if kind == "bag" else [],
            shipment_id=name if kind == "shipment" else None,
            detail=f"{'reprinted' if earlier else 'printed'} {kind} label {name} ({fmt})",
            data={"label": key, "format": fmt, "dpi": chosen_dpi, "repeat": earlier > 0, "copy": earlier + 1},
        )
    return content
