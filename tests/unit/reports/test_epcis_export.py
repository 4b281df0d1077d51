"""Export details the full journey does not reach: refused and administrative entries stay out, site
time zones and GLNs, a quarantined receipt, and legs whose temperature says little or nothing."""

from __future__ import annotations

from record_factory import T0, event, leg, record

from backend.epcis.export import case_document
from backend.epcis.validate import validate_document


def events_of(made) -> list[dict]:
    document = case_document(made, T0)
    assert validate_document(document) == []
    return document["epcisBody"]["eventList"]


def test_refused_and_administrative_entries_are_not_exported():
    made = record(
        [
            event(1, "case_created", "HOSP"),
            event(2, "pickup", "MFG", outcome="refused", refusal="wrong_site"),
            event(3, "correction", "HOSP", corrects=101),
            event(4, "label_print", "APH"),
            event(5, "pickup", "APH"),
        ],
        [leg([5.0])],
    )
    exported = events_of(made)
    assert [e["bizStep"] for e in exported] == ["shipping"]
    assert exported[0]["celltrail:custodyRecord"].endswith(":5")


def test_time_zones_and_locations_come_from_the_site():
    made = record(
        [event(1, "receive", "MFG"), event(2, "store", "HOSP", data={"storage_location": "x"})], [leg([5.0])]
    )
    received, stored = events_of(made)
    assert received["eventTimeZoneOffset"] == "-05:00"  # New York in January
    assert received["readPoint"] == {"id": "https://id.gs1.org/414/7612345000015"}
    assert stored["eventTimeZoneOffset"] == "+00:00"  # a zone the site names that does not exist
    assert stored["bizLocation"] == {"id": "urn:celltrail:site:HOSP"}


def test_a_quarantined_receipt_is_non_conformant_and_unpacked():
    made = record([event(1, "receipt", "MFG", data={"decision": "quarantine"})], [leg([5.0, 6.0])])
    sensors, receiving, unpacking = events_of(made)
    assert (sensors["bizStep"], "disposition" in sensors) == ("sensor_reporting", False)
    assert receiving["disposition"] == "non_conformant"
    assert "sensorElementList" not in receiving
    assert (unpacking["type"], unpacking["action"], unpacking["bizStep"]) == (
        "AggregationEvent",
        "DELETE",
        "unpacking",
    )
    assert "disposition" not in unpacking


def test_temperature_summaries_say_only_what_is_known():
    receipt = event(1, "receipt", "MFG", data={"decision": "accept"})
    alarmed_without_readings = record([receipt], [leg([], alarm=True, temperature_alerts=[7])])
    sensors, decided, _unpacking = events_of(alarmed_without_readings)
    [element] = sensors["sensorElementList"]
    assert element == {"sensorReport": [{"type": "Temperature", "exception": "ALARM_CONDITION"}]}
    # The decision is reported as decided, apart from the alarm it was made with.
    assert (decided["bizStep"], decided["disposition"]) == ("receiving", "conformant")
    assert "sensorElementList" not in decided
    silent = record([receipt], [leg([])])
    assert [e["bizStep"] for e in events_of(silent)] == ["receiving", "unpacking"]
    assert all("sensorElementList" not in e for e in events_of(silent))
