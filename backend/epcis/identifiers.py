"""The URIs Celltrail's things carry in EPCIS documents, and back.

Where a GS1 key exists it is written as a GS1 Digital Link URI: a shipment whose container is labelled
with an SSCC is `https://id.gs1.org/00/<sscc>`, a site with a GLN is `https://id.gs1.org/414/<gln>` as a
location and `https://id.gs1.org/417/<gln>` as a party. Everything else uses Celltrail's private URN
scheme (`urn:celltrail:`), documented here:

- ISBT 128 unit (bag) of a product without a GTIN: `urn:celltrail:isbt128:unit:<unit id>`, e.g.
  `...:unit:CHA999926000001-PRC-01`; with a GTIN it is an SGTIN, `https://id.gs1.org/01/<gtin>/21/<unit id
  without hyphens>`
- shipment without SSCC: `urn:celltrail:shipment:<shipment id>`, e.g. `urn:celltrail:shipment:SHP-2026-000001`
- site without GLN: `urn:celltrail:site:<code>` (location) and `urn:celltrail:party:<code>` (party)
- temperature logger: `urn:celltrail:logger:<logger id>`
- waybill: `urn:celltrail:waybill:<percent-encoded waybill number>`
- custody record entry: `urn:celltrail:record:<COI>:<seq>`
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

import msgspec

from backend.epcis import digital_link
from celltrail_shared.identifiers import IdentifierError, Sscc, UnitId

UNIT: Final = "urn:celltrail:isbt128:unit:"
SHIPMENT: Final = "urn:celltrail:shipment:"
SITE: Final = "urn:celltrail:site:"
PARTY: Final = "urn:celltrail:party:"
LOGGER: Final = "urn:celltrail:logger:"
WAYBILL: Final = "urn:celltrail:waybill:"
RECORD: Final = "urn:celltrail:record:"
# JSON-LD prefix for Celltrail's own event fields (user extensions in EPCIS terms).
EXTENSION_PREFIX: Final = "celltrail"
EXTENSION_NAMESPACE: Final = "urn:celltrail:epcis:"


class Item(msgspec.Struct, frozen=True):
    """What an EPC names for Celltrail: kind is 'unit', 'shipment' or 'sscc' (a shipment's container)."""

    kind: str
    value: str


def container_sscc(container_id: str) -> str | None:
    """The SSCC a container label carries (18 digits, `00`+18 or `(00)`+18), if it is a valid one."""
    digits = re.sub(r"^\(00\)|^00(?=\d{18}$)", "", container_id.strip())
    if not re.fullmatch(r"\d{18}", digits):
        return None
    try:
        return Sscc(digits=digits).digits
    except IdentifierError:
        return None


def unit_uri(unit_id: str, gtin: str | None = None) -> str:
    """A unit of a product with a GTIN is its SGTIN (the serial is the unit id without hyphens)."""
    return digital_link.sgtin_uri(gtin, unit_id.replace("-", "")) if gtin else UNIT + unit_id


def shipment_uri(shipment_id: str, container_id: str) -> str:
    sscc = container_sscc(container_id)
    return digital_link.sscc_uri(sscc) if sscc else SHIPMENT + shipment_id


def location_uri(site_code: str, gln: str | None) -> str:
    return digital_link.gln_uri(gln) if gln else SITE + site_code


def party_uri(site_code: str, gln: str | None) -> str:
    return digital_link.party_gln_uri(gln) if gln else PARTY + site_code


def logger_uri(logger_id: str) -> str:
    return LOGGER + logger_id


def waybill_uri(waybill: str) -> str:
    return WAYBILL + quote(waybill, safe="")


def record_uri(coi: str, seq: int) -> str:
    return f"{RECORD}{coi}:{seq}"


def item_of(uri: str) -> Item | None:
    """The Celltrail unit or shipment an EPC names, or None for anything else."""
    if uri.startswith(UNIT):
        return Item("unit", uri[len(UNIT) :])
    if uri.startswith(SHIPMENT):
        return Item("shipment", uri[len(SHIPMENT) :])
    sgtin = digital_link.sgtin_of(uri)
    if sgtin is not None:
        gtin, serial = sgtin
        unit_id = _unit_of_serial(serial)
        # Ours only when the GTIN is one of Celltrail's products: the caller checks that.
        return Item("sgtin", f"{gtin}/{unit_id}") if unit_id else None
    sscc = digital_link.sscc_of(uri)
    return Item("sscc", sscc) if sscc else None


_SERIAL: Final = re.compile(r"(?P<coi>[A-Z0-9]{15})(?P<kind>[A-Z]{3})(?P<number>[0-9]{2})")


def _unit_of_serial(value: str) -> str | None:
    """The unit id an SGTIN serial written by `unit_uri` stands for, or None."""
    match = _SERIAL.fullmatch(value)
    if match is None:
        return None
    try:
        return UnitId.parse(f"{match['coi']}-{match['kind']}-{match['number']}").text
    except IdentifierError:
        return None


def place_of(uri: str) -> Item | None:
    """A site a read point or business location names: kind 'site' (a code) or 'gln'."""
    if uri.startswith(SITE):
        return Item("site", uri[len(SITE) :])
    gln = digital_link.gln_of(uri)
    return Item("gln", gln) if gln else None
