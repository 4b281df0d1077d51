"""What the PDF and its charts say in cases the full journey does not produce: a broken chain, patient
fields shown, a leg without readings, and a long leg whose chart is thinned without losing its peak."""

from __future__ import annotations

import msgspec
import pypdfium2 as pdfium
from record_factory import SIGNED, event, leg, record
from reportlab.graphics.shapes import PolyLine, Rect

from backend.reports import chart
from backend.reports.pdf import render_pdf
from backend.reports.record import ChainVerdict, PatientFields


def text_of(content: bytes) -> str:
    document = pdfium.PdfDocument(content)
    return " ".join(
        " ".join(document[i].get_textpage().get_text_range().split()) for i in range(len(document))
    )


def test_broken_chain_patient_fields_and_an_empty_leg():
    broken = ChainVerdict(
        False,
        2,
        "ef" * 32,
        "the chain breaks at event 2",
        {"seq": 2, "event_id": 102, "reason": "changed after"},
    )
    made = record(
        [event(1, "label", "APH"), event(2, "infuse", "HOSP", signatures=[SIGNED])],
        [leg([])],
        chain=broken,
        patient=PatientFields("MRN-7", 1970),
        patient_withheld=False,
    )
    text = text_of(render_pdf(made))
    assert "Chain verification: FAILED - the chain breaks at event 2: changed after" in text
    assert "reference MRN-7, birth year 1970" in text
    assert "Signed by Pharm Two (user pharm2) as pharmacist - meaning: administered" in text
    assert "No readings recorded for this leg" in text
    assert "page 1 of" in text


def polyline_ys(drawing) -> list[float]:
    [line] = [shape for shape in drawing.contents if isinstance(shape, PolyLine)]
    return line.points[1::2]


def test_a_long_leg_is_thinned_but_keeps_its_peak(monkeypatch):
    temps = [5.0] * 20_000
    temps[12_345] = 14.0
    long_leg = leg(temps)
    thinned = chart.temperature_chart(long_leg)
    assert len(polyline_ys(thinned)) <= chart.MAX_POINTS + 2
    monkeypatch.setattr(chart, "MAX_POINTS", 10**6)
    full = chart.temperature_chart(long_leg)
    assert len(polyline_ys(full)) == 20_000
    assert max(polyline_ys(thinned)) == max(polyline_ys(full))


def test_excursions_are_shaded():
    drawing = chart.temperature_chart(leg([5, 9, 10, 5, 1, 5]))
    shaded = [s for s in drawing.contents if isinstance(s, Rect) and s.fillColor == chart.EXCURSION_FILL]
    assert len(shaded) == 2
    calm = chart.temperature_chart(msgspec.structs.replace(leg([5, 6]), excursions=[]))
    assert not [s for s in calm.contents if isinstance(s, Rect) and s.fillColor == chart.EXCURSION_FILL]
