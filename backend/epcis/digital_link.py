"""GS1 keys as URIs: EPC URNs (`urn:epc:id:sgtin:...`) and GS1 Digital Link URIs
(`https://id.gs1.org/01/...`) turned into the constrained canonical Digital Link form the event hash
uses, and the Digital Link URIs Celltrail writes for its own GS1 keys."""

from __future__ import annotations

import re
from typing import Final

from celltrail_shared.identifiers import gs1_check_digit

DL_ROOT: Final = "https://id.gs1.org"

# Primary-key AIs and, for each, the qualifier AIs kept, finest first (only one qualifier chain survives).
_QUALIFIERS: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "00": (),
    "01": (("21",), ("10",), ("235",)),
    "253": (),
    "255": (),
    "401": (),
    "402": (),
    "414": (("254",),),
    "417": (),
    "8003": (),
    "8004": (),
    "8006": (("21",), ("10",)),
    "8010": (("8011",),),
    "8017": (),
    "8018": (),
}
_DL: Final = re.compile(r"https?://[^/?#]+(?P<path>/[^?#]*)(?:\?[^#]*)?(?:#.*)?")


def sscc_uri(sscc: str) -> str:
    return f"{DL_ROOT}/00/{sscc}"


def gln_uri(gln: str) -> str:
    """A physical location identified by its GLN (AI 414)."""
    return f"{DL_ROOT}/414/{gln}"


def party_gln_uri(gln: str) -> str:
    """A party identified by its GLN (AI 417)."""
    return f"{DL_ROOT}/417/{gln}"


def sgtin_uri(gtin: str, serial: str) -> str:
    """A trade item instance: its GTIN (AI 01) and serial (AI 21)."""
    return f"{DL_ROOT}/01/{gtin}/21/{serial}"


def sgtin_of(uri: str) -> tuple[str, str] | None:
    """The GTIN and serial an SGTIN URI (EPC URN or Digital Link) names."""
    match = re.fullmatch(re.escape(DL_ROOT) + r"/01/(\d{14})/21/([^/]+)", canonical(uri) or "")
    return (match[1], match[2]) if match else None


def canonical(uri: str) -> str | None:
    """The constrained canonical Digital Link for an EPC URI or a Digital Link, or None when `uri` is
    neither (or names a scheme Celltrail does not convert)."""
    if uri.startswith("urn:epc:"):
        return _from_epc_urn(uri)
    return _constrain(uri)


def gln_of(uri: str) -> str | None:
    """The GLN a location URI names (SGLN URN or Digital Link with AI 414), without extension."""
    converted = canonical(uri)
    match = re.fullmatch(re.escape(DL_ROOT) + r"/414/(\d{13})(?:/254/.*)?", converted or "")
    return match[1] if match else None


def sscc_of(uri: str) -> str | None:
    converted = canonical(uri)
    match = re.fullmatch(re.escape(DL_ROOT) + r"/00/(\d{18})", converted or "")
    return match[1] if match else None


def _with_check(digits: str) -> str:
    return digits + str(gs1_check_digit(digits))


def _gtin(company_prefix: str, indicator_item: str) -> str:
    return _with_check(indicator_item[:1] + company_prefix + indicator_item[1:])


def _from_epc_urn(uri: str) -> str | None:
    parts = uri.split(":")
    if len(parts) != 5:
        return None
    _urn, _epc, kind, scheme, body = parts
    fields = body.split(".")
    try:
        if kind == "id":
            return _from_epc_id(scheme, fields)
        if kind == "class" and scheme == "lgtin" and len(fields) == 3:
            return f"{DL_ROOT}/01/{_gtin(fields[0], fields[1])}/10/{fields[2]}"
        if kind == "idpat" and scheme == "sgtin" and len(fields) == 3 and "*" not in fields[:2]:
            return f"{DL_ROOT}/01/{_gtin(fields[0], fields[1])}"
    except ValueError:
        return None
    return None


def _from_epc_id(scheme: str, fields: list[str]) -> str | None:
    digits = all(f.isdigit() for f in fields[:2])
    if not digits:
        return None
    match scheme, len(fields):
        case "sgtin", 3:
            return f"{DL_ROOT}/01/{_gtin(fields[0], fields[1])}/21/{fields[2]}"
        case "sscc", 2:
            return f"{DL_ROOT}/00/{_with_check(fields[1][:1] + fields[0] + fields[1][1:])}"
        case "sgln", 3:
            gln = _with_check(fields[0] + fields[1])
            return f"{DL_ROOT}/414/{gln}" + ("" if fields[2] == "0" else f"/254/{fields[2]}")
        case "pgln", 2:
            return f"{DL_ROOT}/417/{_with_check(fields[0] + fields[1])}"
        case "grai", 3:
            return f"{DL_ROOT}/8003/{_with_check('0' + fields[0] + fields[1])}{fields[2]}"
        case "giai", 2:
            return f"{DL_ROOT}/8004/{fields[0]}{fields[1]}"
        case "gsrn", 2:
            return f"{DL_ROOT}/8018/{_with_check(fields[0] + fields[1])}"
        case "gsrnp", 2:
            return f"{DL_ROOT}/8017/{_with_check(fields[0] + fields[1])}"
        case "gdti", 3:
            return f"{DL_ROOT}/253/{_with_check(fields[0] + fields[1])}{fields[2]}"
        case "sgcn", 3:
            return f"{DL_ROOT}/255/{_with_check(fields[0] + fields[1])}{fields[2]}"
    return None


def _constrain(uri: str) -> str | None:
    """Own domain, no query string, only the finest level of identification."""
    match = _DL.fullmatch(uri)
    if match is None:
        return None
    segments = [s for s in match["path"].split("/") if s]
    for start in range(len(segments) - 1):
        primary = segments[start]
        if primary not in _QUALIFIERS:
            continue
        pairs = dict(zip(segments[start + 2 :: 2], segments[start + 3 :: 2], strict=False))
        value = segments[start + 1]
        if primary == "01":
            value = value.rjust(14, "0")
        path = f"/{primary}/{value}"
        for chain in _QUALIFIERS[primary]:
            if all(ai in pairs for ai in chain):
                path += "".join(f"/{ai}/{pairs[ai]}" for ai in chain)
                break
        return DL_ROOT + path
    return None
