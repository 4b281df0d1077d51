"""EPC URNs and Digital Link URIs as constrained canonical Digital Link; SSCC container labels."""

from __future__ import annotations

import pytest

from backend.domain.errors import InvalidInput
from backend.epcis import digital_link
from backend.epcis.identifiers import container_sscc, item_of, place_of, unit_uri
from backend.epcis.products import gtin14


@pytest.mark.parametrize(
    ("uri", "canonical"),
    [
        ("urn:epc:id:sgtin:0614141.107346.2017", "https://id.gs1.org/01/10614141073464/21/2017"),
        ("urn:epc:id:sscc:4012345.0000000333", "https://id.gs1.org/00/040123450000003338"),
        ("urn:epc:id:sgln:4012345.00011.987", "https://id.gs1.org/414/4012345000115/254/987"),
        ("urn:epc:id:sgln:4012345.00011.0", "https://id.gs1.org/414/4012345000115"),
        ("urn:epc:id:pgln:4012345.00000", "https://id.gs1.org/417/4012345000009"),
        ("urn:epc:id:gdti:4012345.11111.123", "https://id.gs1.org/253/4012345111118123"),
        ("urn:epc:id:giai:4000001.111", "https://id.gs1.org/8004/4000001111"),
        ("urn:epc:id:grai:4012345.00011.1", "https://id.gs1.org/8003/040123450001151"),
        ("urn:epc:class:lgtin:4012345.012345.998877", "https://id.gs1.org/01/04012345123456/10/998877"),
        ("urn:epc:idpat:sgtin:4012345.098765.*", "https://id.gs1.org/01/04012345987652"),
        (
            "https://brand.example.com/shop/01/4012345123456/10/LOT1/21/S1?x=1",
            "https://id.gs1.org/01/04012345123456/21/S1",
        ),
        ("https://example.org/8004/401234599999", "https://id.gs1.org/8004/401234599999"),
    ],
)
def test_canonical(uri, canonical):
    assert digital_link.canonical(uri) == canonical


@pytest.mark.parametrize(
    "uri", ["http://transaction.acme.com/po/12345678", "urn:celltrail:shipment:SHP-2026-000001", "geo:1,2"]
)
def test_other_uris_are_left_alone(uri):
    assert digital_link.canonical(uri) is None


@pytest.mark.parametrize(
    ("label", "sscc"),
    [
        ("076123450000000015", "076123450000000015"),
        ("00076123450000000015", "076123450000000015"),
        ("(00)076123450000000015", "076123450000000015"),
        ("076123450000000016", None),  # wrong check digit
        ("SHIPPER-7", None),
    ],
)
def test_container_sscc(label, sscc):
    assert container_sscc(label) == sscc


def test_items_and_places():
    assert item_of("urn:epc:id:sscc:7612345.0000000001") == item_of(
        "https://id.gs1.org/00/076123450000000015"
    )
    assert item_of("urn:celltrail:isbt128:unit:X-APH-01").kind == "unit"
    assert item_of("urn:epc:id:sgtin:0614141.107346.2017") is None
    assert place_of("urn:epc:id:sgln:7612345.00001.0").value == "7612345000015"
    assert place_of("https://id.gs1.org/414/7612345000015/254/fridge").value == "7612345000015"
    assert place_of("urn:celltrail:site:USZ").value == "USZ"
    assert place_of("urn:epc:id:sgtin:0614141.107346.2017") is None


UNIT = "CHA999926000001-PRC-01"
GTIN = "07612345000022"


def test_a_unit_of_a_product_with_a_gtin_is_an_sgtin_and_back():
    uri = unit_uri(UNIT, GTIN)
    assert uri == f"https://id.gs1.org/01/{GTIN}/21/CHA999926000001PRC01"
    assert unit_uri(UNIT) == f"urn:celltrail:isbt128:unit:{UNIT}"
    for form in (uri, "urn:epc:id:sgtin:7612345.000002.CHA999926000001PRC01"):
        item = item_of(form)
        assert item is not None
        assert (item.kind, item.value) == ("sgtin", f"{GTIN}/{UNIT}")
    # A serial that is no unit id is someone else's trade item.
    assert item_of(f"https://id.gs1.org/01/{GTIN}/21/2017") is None
    assert item_of(f"https://id.gs1.org/01/{GTIN}/21/CHA999926000001XYZ01") is None


@pytest.mark.parametrize(
    ("text", "gtin"),
    [("07612345000022", GTIN), ("7612345000022", GTIN), ("96385074", "00000096385074")],
)
def test_gtins_are_written_as_fourteen_digits(text, gtin):
    assert gtin14(text) == gtin


@pytest.mark.parametrize(("text", "words"), [("07612345000023", "check digit"), ("123", "8, 12, 13 or 14")])
def test_not_gtins(text, words):
    with pytest.raises(InvalidInput, match=words):
        gtin14(text)
