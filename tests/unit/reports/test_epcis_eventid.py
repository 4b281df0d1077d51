"""The CBV 2.0 EPCIS Event Hash ID against the worked examples published with the reference
implementation of the algorithm (pre-hash strings and hashes), and its invariances."""

from __future__ import annotations

import copy
import hashlib

import pytest

from backend.epcis.eventid import event_hash_id, prehash
from backend.epcis.formats import hash_timestamp

CONTEXT = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"example": "https://ns.example.com/epcis/"},
]

# Example 1: user extensions at event level.
EXAMPLE_1 = {
    "type": "ObjectEvent",
    "eventTime": "2020-03-04T11:00:30.000+01:00",
    "eventTimeZoneOffset": "+01:00",
    "recordTime": "2020-03-04T11:00:30.999+01:00",
    "epcList": [
        "urn:epc:id:sscc:4012345.0000000333",
        "urn:epc:id:sscc:4012345.0000000111",
        "urn:epc:id:sscc:4012345.0000000222",
    ],
    "action": "OBSERVE",
    "bizStep": "departing",
    "readPoint": {"id": "urn:epc:id:sgln:4012345.00011.987"},
    "example:myField1": {"example:mySubField1": "2", "example:mySubField2": "5"},
    "example:myField2": "0",
    "example:myField3": {"example:mySubField3": ["3", "1"]},
}
PREHASH_1 = (
    "eventType=ObjectEvent"
    "eventTime=2020-03-04T10:00:30.000Z"
    "eventTimeZoneOffset=+01:00"
    "epcList"
    "epc=https://id.gs1.org/00/040123450000001112"
    "epc=https://id.gs1.org/00/040123450000002225"
    "epc=https://id.gs1.org/00/040123450000003338"
    "action=OBSERVE"
    "bizStep=https://ref.gs1.org/cbv/BizStep-departing"
    "readPoint"
    "id=https://id.gs1.org/414/4012345000115/254/987"
    "{https://ns.example.com/epcis/}myField1"
    "{https://ns.example.com/epcis/}mySubField1=2"
    "{https://ns.example.com/epcis/}mySubField2=5"
    "{https://ns.example.com/epcis/}myField2=0"
    "{https://ns.example.com/epcis/}myField3"
    "{https://ns.example.com/epcis/}mySubField3=1"
    "{https://ns.example.com/epcis/}mySubField3=3"
)
HASH_1 = "ni:///sha-256;6ae96341e0acc6d7a261364751f60e68278a81cdf51da0abb6b4e617014e39d7?ver=CBV2.0"

# Example 2: sensor data (CBV 2.0 writes no `sensorElementList` name).
EXAMPLE_2 = {
    "type": "ObjectEvent",
    "eventTime": "2020-04-01T15:00:00+01:00",
    "eventTimeZoneOffset": "+01:00",
    "epcList": ["urn:epc:id:sgtin:4012345.011111.9876"],
    "action": "OBSERVE",
    "bizStep": "inspecting",
    "readPoint": {"id": "urn:epc:id:sgln:4012345.00005.0"},
    "sensorElementList": [
        {
            "sensorMetadata": {
                "deviceID": "urn:epc:id:giai:4000001.111",
                "deviceMetadata": "https://id.gs1.org/8004/4000001111",
            },
            "sensorReport": [
                {"type": "Temperature", "value": 26, "sDev": 0.1, "uom": "CEL"},
                {"type": "AbsoluteHumidity", "value": 12.1, "uom": "A93"},
                {
                    "type": "Dimensionless",
                    "microorganism": "https://www.ncbi.nlm.nih.gov/taxonomy/1126011",
                    "value": 0.05,
                    "uom": "C35",
                },
                {
                    "type": "Dimensionless",
                    "chemicalSubstance": "https://identifiers.org/inchikey:CZMRCDWAGMRECN-UGDNZRGBSA-N",
                    "value": 0.18,
                    "uom": "C35",
                },
            ],
        }
    ],
}
PREHASH_2_PUBLISHED = (
    "eventType=ObjectEvent"
    "eventTime=2020-04-01T14:00:00.000Z"
    "eventTimeZoneOffset=+01:00"
    "epcList"
    "epc=https://id.gs1.org/01/04012345111118/21/9876"
    "action=OBSERVE"
    "bizStep=https://ref.gs1.org/cbv/BizStep-inspecting"
    "readPoint"
    "id=https://id.gs1.org/414/4012345000054"
    "sensorElement"
    "sensorMetadata"
    "deviceID=https://id.gs1.org/8004/4000001111"
    "deviceMetadata=https://id.gs1.org/8004/4000001111"
    "sensorReport"
    "type=https://ref.gs1.org/voc/AbsoluteHumidity"
    "value=12.1"
    "uom=A93"
    "sensorReport"
    "type=https://ref.gs1.org/voc/Dimensionless"
    "chemicalSubstance=https://identifiers.org/inchikey:CZMRCDWAGMRECN-UGDNZRGBSA-N"
    "value=0.18"
    "uom=C35"
    "sensorReport"
    "type=https://ref.gs1.org/voc/Dimensionless"
    "microorganism=https://www.ncbi.nlm.nih.gov/taxonomy/1126011"
    "value=0.05"
    "uom=C35"
    "sensorReport"
    "type=https://ref.gs1.org/voc/Temperature"
    "value=26"
    "sDev=0.1"
    "uom=CEL"
)
HASH_2_PUBLISHED = "271565c346ae2fb28c4583c4dca4ab4772d465eb4e0b6e548d77d8b49377d95c"

# Example 3: business transactions, sources/destinations and an extension inside readPoint.
EXAMPLE_3 = {
    "type": "ObjectEvent",
    "eventTime": "2020-03-04T11:00:30+01:00",
    "eventTimeZoneOffset": "+01:00",
    "epcList": ["urn:epc:id:sgtin:0614141.011111.987"],
    "action": "OBSERVE",
    "bizStep": "departing",
    "disposition": "in_transit",
    "readPoint": {"id": "urn:epc:id:sgln:4012345.00011.0", "example:myField1": "AB-12"},
    "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epc:id:gdti:4012345.11111.123"}],
    "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:4012345.00000"}],
    "destinationList": [{"type": "owning_party", "destination": "urn:epc:id:pgln:0614141.00000"}],
    "example:userExt": "CD-34",
}
PREHASH_3 = (
    "eventType=ObjectEvent"
    "eventTime=2020-03-04T10:00:30.000Z"
    "eventTimeZoneOffset=+01:00"
    "epcList"
    "epc=https://id.gs1.org/01/00614141111114/21/987"
    "action=OBSERVE"
    "bizStep=https://ref.gs1.org/cbv/BizStep-departing"
    "disposition=https://ref.gs1.org/cbv/Disp-in_transit"
    "readPoint"
    "id=https://id.gs1.org/414/4012345000115"
    "bizTransactionList"
    "type=https://ref.gs1.org/cbv/BTT-po"
    "bizTransaction=https://id.gs1.org/253/4012345111118123"
    "sourceList"
    "type=https://ref.gs1.org/cbv/SDT-owning_party"
    "source=https://id.gs1.org/417/4012345000009"
    "destinationList"
    "type=https://ref.gs1.org/cbv/SDT-owning_party"
    "destination=https://id.gs1.org/417/0614141000005"
    "readPoint"
    "{https://ns.example.com/epcis/}myField1=AB-12"
    "{https://ns.example.com/epcis/}userExt=CD-34"
)
HASH_3 = "ni:///sha-256;3ae14c02c4bdc220cc31942cf804f6845eb8dec96ba6483391c92a9b165f9329?ver=CBV2.0"


@pytest.mark.parametrize(
    ("event", "expected_prehash", "expected_hash"),
    [(EXAMPLE_1, PREHASH_1, HASH_1), (EXAMPLE_3, PREHASH_3, HASH_3)],
    ids=["extensions", "transactions-sources-destinations"],
)
def test_worked_examples(event, expected_prehash, expected_hash):
    assert prehash(event, CONTEXT) == expected_prehash
    assert event_hash_id(event, CONTEXT) == expected_hash


def test_sensor_example():
    # The published example writes GS1 Web Vocabulary terms under https://ref.gs1.org/voc/; the EPCIS 2.0
    # JSON-LD context (and so every JSON-LD processor) binds `gs1` to https://gs1.org/voc/, which is what
    # is hashed here. Everything else is the published pre-hash string, character for character.
    ours = prehash(EXAMPLE_2, CONTEXT)
    assert ours == PREHASH_2_PUBLISHED.replace("https://ref.gs1.org/voc/", "https://gs1.org/voc/")
    published_namespace = ours.replace("https://gs1.org/voc/", "https://ref.gs1.org/voc/")
    assert hashlib.sha256(published_namespace.encode()).hexdigest() == HASH_2_PUBLISHED


def test_same_event_written_differently_has_the_same_id():
    written_differently = {
        "example:myField3": {"example:mySubField3": ["1", "3"]},
        "readPoint": {"id": "https://id.gs1.org/414/4012345000115/254/987?linkType=all"},
        "eventTime": "2020-03-04T06:00:30-04:00",
        "bizStep": "https://ref.gs1.org/cbv/BizStep-departing",
        "epcList": [
            "https://example.com/00/040123450000002225",
            "urn:epc:id:sscc:4012345.0000000333",
            "urn:epc:id:sscc:4012345.0000000111",
        ],
        **{k: v for k, v in EXAMPLE_1.items() if k not in ("readPoint", "eventTime", "bizStep", "epcList")},
        "eventID": "urn:uuid:4c1fa1ad-35ac-4e3c-ae3f-6fe6a7cce7b2",
    }
    assert event_hash_id(written_differently, CONTEXT) == HASH_1


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.update(action="ADD"),
        lambda e: e.update(eventTime="2020-03-04T11:00:30.001+01:00"),
        lambda e: e["epcList"].pop(),
        lambda e: e["readPoint"].update(id="urn:epc:id:sgln:4012345.00011.988"),
        lambda e: e.update(disposition="in_transit"),
        lambda e: e.update({"example:myField2": "1"}),
    ],
)
def test_any_change_changes_the_id(change):
    changed = copy.deepcopy(EXAMPLE_1)
    change(changed)
    assert event_hash_id(changed, CONTEXT) != HASH_1


@pytest.mark.parametrize(
    ("written", "hashed"),
    [
        ("2020-03-04T11:00:30+01:00", "2020-03-04T10:00:30.000Z"),
        ("2020-03-04T10:00:30.1Z", "2020-03-04T10:00:30.100Z"),
        ("2023-01-18T11:04:03.1415Z", "2023-01-18T11:04:03.142Z"),
        ("2023-01-18T11:04:03.1414Z", "2023-01-18T11:04:03.141Z"),
        ("2023-12-31T23:59:59.9996Z", "2024-01-01T00:00:00.000Z"),
        ("2005-04-03T20:33:31.116000-06:00", "2005-04-04T02:33:31.116Z"),
    ],
)
def test_timestamps_are_utc_with_milliseconds(written, hashed):
    assert hash_timestamp(written) == hashed


def test_numbers_lose_trailing_zeros():
    report = {"type": "ObjectEvent", "quantityList": [{"epcClass": "urn:x:y", "quantity": 1.0, "uom": "KGM"}]}
    assert "quantity=1uom=KGM" in prehash(report)
    report["quantityList"][0]["quantity"] = 0.3434
    assert "quantity=0.3434uom" in prehash(report)
