"""Records made in memory, for tests of what is made from a record (PDF, chart, EPCIS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from backend.domain.temperature import summarise
from backend.reports.excursions import find_excursions
from backend.reports.record import (
    CaseRecord,
    ChainVerdict,
    EventLine,
    SignatureLine,
    SiteInfo,
    TemperatureLeg,
)

T0 = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
COI = "CHA999926000001"
APH = f"{COI}-APH-01"
SHIP = "SHP-2026-000001"


def leg(
    temps: list[float], low: float | None = 2.0, high: float | None = 8.0, **changes: Any
) -> TemperatureLeg:
    series = [(T0 + timedelta(minutes=5 * i), t) for i, t in enumerate(temps)]
    found = find_excursions(series, low, high)
    made = TemperatureLeg(
        shipment_id=SHIP,
        from_site="APH",
        to_site="MFG",
        container_id="SHIPPER-1",
        logger_id="LGR-1",
        profile="fresh v1",
        low_c=low,
        high_c=high,
        status="received",
        planned_departure=T0,
        planned_arrival=T0 + timedelta(hours=6),
        departed_at=T0,
        arrived_at=T0 + timedelta(hours=5),
        received_at=T0 + timedelta(hours=5, minutes=10),
        units=[APH],
        summary=summarise(series, low, high, False),
        excursions=found,
        temperature_alerts=[],
        alarm=bool(found),
        readings=series,
        readings_truncated=False,
    )
    return msgspec.structs.replace(made, **changes)


def event(seq: int, action: str, site: str, **changes: Any) -> EventLine:
    made = EventLine(
        id=100 + seq,
        seq=seq,
        server_time=T0 + timedelta(minutes=seq),
        device_time=None,
        action=action,
        outcome="accepted",
        refusal=None,
        detail=f"{action} done",
        actor="Nurse",
        site=site,
        shipment_id=SHIP if action in ("pack", "pickup", "receive", "receipt") else None,
        unit_ids=[APH],
        counterpart=None,
        signatures=[],
        data={},
        corrects=None,
        corrected_by=[],
        hash="ab" * 32,
    )
    return msgspec.structs.replace(made, **changes)


def record(events: list[EventLine], legs: list[TemperatureLeg], **changes: Any) -> CaseRecord:
    made = CaseRecord(
        coi=COI,
        barcode=f"&/{COI}",
        eye_readable="CH A9999 26 000001 [*]",
        treatment_site="HOSP",
        therapy="CAR-T",
        status="open",
        created_at=T0,
        patient=None,
        patient_withheld=True,
        sites=[
            SiteInfo("APH", "Apheresis unit", "apheresis", "Europe/Zurich", None),
            SiteInfo("MFG", "Cell factory", "manufacturing", "America/New_York", "7612345000015"),
            SiteInfo("HOSP", "Hospital", "hospital", "Not/AZone", None),
        ],
        units=[],
        legs=legs,
        events=events,
        alerts=[],
        corrections=[],
        corrected=False,
        chain=ChainVerdict(True, len(events), "cd" * 32, f"all {len(events)} events verify", None),
        generated_at=T0 + timedelta(days=1),
        generated_for="Tester",
    )
    return msgspec.structs.replace(made, **changes)


SIGNED = SignatureLine("Pharm Two", "pharm2", "pharmacist", "administered", T0)
