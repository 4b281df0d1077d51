"""Workflow modes, pure: parsed codes of a frame in, custody steps and verdicts out."""

from __future__ import annotations

import pytest

from backend.domain.identifiers import Coi, Din, ShipmentId, Sscc, UnitId, UnitKind, encode_qr_payload
from scanner.decode import Detection
from scanner.parse import Parsed, interpret
from scanner.verdict import Level, Verdict
from scanner.workflow import Mode, Step, Submit, Workflow

COI_A = Coi("G1234", "26", "A1B2C3")
COI_B = Coi("G1234", "26", "Z9Y8X7")
SHIPMENT = "SHP-2026-000123"
SSCC = Sscc.build("7612345", "000000123")


def p(text: str) -> Parsed:
    result = interpret(Detection(text, "code128", ((0, 0),), "zxing", gs1=text.startswith("]")))
    assert isinstance(result, Parsed), result
    return result


def unit(coi: Coi = COI_A, number: int = 1) -> Parsed:
    return p(encode_qr_payload(UnitId(coi, UnitKind.FINAL_PRODUCT, number)))


def frame(
    workflow: Workflow, t: float, *items: Parsed, reported: tuple[Parsed, ...] | None = None
) -> list[Step]:
    return workflow.on_frame(t, list(items), list(items if reported is None else reported))


def test_pickup_records_the_shipment_code_as_read() -> None:
    workflow = Workflow(Mode.PICKUP)
    assert frame(workflow, 0.0, p(SHIPMENT)) == [Submit("pickup", (SHIPMENT,), f"shipment {SHIPMENT}")]
    # Bags are not picked up one by one.
    steps = frame(workflow, 1.0, unit())
    assert [type(s) for s in steps] == [Verdict]
    assert steps[0].level is Level.INFO


def test_handover_names_the_receiver_and_needs_one() -> None:
    with pytest.raises(ValueError, match="handover-to"):
        Workflow(Mode.HANDOVER)
    workflow = Workflow(Mode.HANDOVER, handover_to="pharmacist")
    (step,) = frame(workflow, 0.0, p(f"CT1:SHP:{SHIPMENT}"))
    assert step == Submit(
        "handover", (f"CT1:SHP:{SHIPMENT}",), f"shipment {SHIPMENT}", handover_to="pharmacist"
    )


def test_receive_sends_bags_with_the_last_shipment_scanned() -> None:
    workflow = Workflow(Mode.RECEIVE)
    (prompt,) = frame(workflow, 0.0, unit())
    assert isinstance(prompt, Verdict)
    assert "shipment label first" in prompt.message

    assert frame(workflow, 1.0, p(SHIPMENT)) == [Submit("receive", (SHIPMENT,), f"shipment {SHIPMENT}")]
    bag = unit(number=2)
    (step,) = frame(workflow, 2.0, bag)
    assert step == Submit(
        "receive", (SHIPMENT, bag.detection.text), f"bag CHG123426A1B2C3-PRC-02 in {SHIPMENT}"
    )


def test_a_shipment_and_a_bag_in_one_frame_are_both_recorded_shipment_first() -> None:
    workflow = Workflow(Mode.RECEIVE)
    bag = unit()
    steps = frame(workflow, 0.0, bag, p(SHIPMENT))
    assert [s.codes for s in steps if isinstance(s, Submit)] == [(SHIPMENT,), (SHIPMENT, bag.detection.text)]


def test_a_shipment_label_is_one_step_whichever_of_its_codes_is_read() -> None:
    workflow = Workflow(Mode.PICKUP)
    sscc = p(f"]d200{SSCC.digits}")
    assert [s.codes for s in frame(workflow, 0.0, p(SHIPMENT), sscc)] == [(SHIPMENT,)]
    assert frame(workflow, 5.0, sscc) == []  # seen with the shipment before: the same label
    other = Workflow(Mode.PICKUP)
    assert [s.codes for s in frame(other, 0.0, sscc)] == [(sscc.detection.text,)]
    assert frame(other, 0.1, p(SHIPMENT), sscc, reported=(p(SHIPMENT),)) == []


def test_store_records_bags_at_a_location_and_needs_one() -> None:
    with pytest.raises(ValueError, match="storage-location"):
        Workflow(Mode.STORE)
    workflow = Workflow(Mode.STORE, storage_location="LN2-3 rack B")
    bag = unit()
    assert frame(workflow, 0.0, bag) == [
        Submit("store", (bag.detection.text,), "bag CHG123426A1B2C3-PRC-01", storage_location="LN2-3 rack B")
    ]
    (info,) = frame(workflow, 1.0, p(SHIPMENT))
    assert isinstance(info, Verdict)


def test_context_codes_alone_record_nothing() -> None:
    workflow = Workflow(Mode.RECEIVE)
    din = p(Din.build("G1234", "17", "654321").barcode)
    assert frame(workflow, 0.0, p(COI_A.barcode), din, p("LGR-T4X9002")) == []


# ----------------------------------------------------------------------------------- bedside


def test_bedside_ok_when_the_bag_belongs_to_the_wristband() -> None:
    workflow = Workflow(Mode.BEDSIDE_VERIFY)
    (band,) = frame(workflow, 0.0, p(f"CT1:COI:{COI_A.value}"), p(COI_A.barcode))
    assert band.level is Level.INFO
    assert workflow.wristband == COI_A
    bag = unit()
    (verdict,) = frame(workflow, 2.0, bag, p(COI_A.barcode), reported=(bag,))
    assert verdict.level is Level.OK
    assert "CHG123426A1B2C3-PRC-01" in verdict.message


def test_bedside_stops_when_the_bag_belongs_to_someone_else() -> None:
    workflow = Workflow(Mode.BEDSIDE_VERIFY)
    frame(workflow, 0.0, p(f"CT1:COI:{COI_A.value}"))
    (verdict,) = frame(workflow, 2.0, unit(COI_B))
    assert verdict.level is Level.STOP
    assert COI_A.eye_readable in verdict.message
    assert COI_B.eye_readable in verdict.message


def test_a_bag_before_any_wristband_only_prompts() -> None:
    workflow = Workflow(Mode.BEDSIDE_VERIFY)
    (verdict,) = frame(workflow, 0.0, unit())
    assert verdict.level is Level.INFO
    assert "wristband first" in verdict.message


def test_a_bare_coi_barcode_counts_as_wristband_only_after_staying_alone_in_view() -> None:
    workflow = Workflow(Mode.BEDSIDE_VERIFY, wristband_settle=0.5)
    coi = p(COI_A.barcode)
    assert frame(workflow, 0.0, coi) == []
    assert frame(workflow, 0.3, coi) == []
    assert workflow.wristband is None
    (band,) = frame(workflow, 0.6, coi)
    assert workflow.wristband == COI_A
    assert band.level is Level.INFO


def test_a_bags_own_coi_barcode_never_becomes_the_wristband() -> None:
    workflow = Workflow(Mode.BEDSIDE_VERIFY, wristband_settle=0.5)
    coi, din = p(COI_A.barcode), p(Din.build("G1234", "17", "654321").barcode)
    for t in (0.0, 0.4, 0.8, 1.2):
        frame(workflow, t, coi, din)  # a bag: its DIN is in view with the COI
    assert workflow.wristband is None
    (verdict,) = frame(workflow, 1.5, unit())
    assert verdict.level is Level.INFO  # never a false OK


def test_two_different_cois_in_view_stop_once() -> None:
    workflow = Workflow(Mode.BEDSIDE_VERIFY)
    band, bag = p(f"CT1:COI:{COI_A.value}"), unit(COI_B)
    (stop,) = frame(workflow, 0.0, band, bag)
    assert stop.level is Level.STOP
    assert frame(workflow, 0.1, band, bag, reported=()) == []  # not repeated every frame
    assert workflow.wristband is None


def test_a_shipment_id_is_no_bag() -> None:
    workflow = Workflow(Mode.BEDSIDE_VERIFY)
    frame(workflow, 0.0, p(f"CT1:COI:{COI_A.value}"))
    assert frame(workflow, 1.0, p(ShipmentId(2026, 1).text)) == []
