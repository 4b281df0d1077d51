"""Workflow modes, pure: parsed codes of a frame in, custody steps and verdicts out."""

from __future__ import annotations

import pytest
import zxingcpp
from scanner_media import bag as bag_label
from scanner_media import label_image, shipment, wristband

from celltrail_shared.identifiers import (
    Coi,
    Din,
    Giai,
    LoggerId,
    ShipmentId,
    Sscc,
    UnitId,
    UnitKind,
    encode_qr_payload,
)
from labels.model import AssetTag
from scanner.decode import Detection
from scanner.parse import Parsed, interpret
from scanner.verdict import Level, Verdict
from scanner.workflow import LabelKind, Mode, Step, Submit, Workflow, read_labels, symbol_size

COI_A = Coi("G1234", "26", "A1B2C3")
COI_B = Coi("G1234", "26", "Z9Y8X7")
SHIPMENT = "SHP-2026-000123"
SSCC = Sscc.build("7612345", "000000123")
UNIT_A2 = UnitId(COI_A, UnitKind.FINAL_PRODUCT, 2)


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
    assert frame(workflow, 0.0, p(SHIPMENT)) == [
        Submit("pickup", (SHIPMENT,), f"shipment {SHIPMENT}", item=f"shipment:{SHIPMENT}")
    ]
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
        "handover",
        (f"CT1:SHP:{SHIPMENT}",),
        f"shipment {SHIPMENT}",
        handover_to="pharmacist",
        item=f"shipment:{SHIPMENT}",
    )


def test_receive_sends_bags_with_the_last_shipment_scanned() -> None:
    workflow = Workflow(Mode.RECEIVE)
    (prompt,) = frame(workflow, 0.0, unit())
    assert isinstance(prompt, Verdict)
    assert "shipment label first" in prompt.message

    assert frame(workflow, 1.0, p(SHIPMENT)) == [
        Submit("receive", (SHIPMENT,), f"shipment {SHIPMENT}", item=f"shipment:{SHIPMENT}")
    ]
    bag = unit(number=2)
    (step,) = frame(workflow, 2.0, bag)
    assert step == Submit(
        "receive",
        (SHIPMENT, bag.detection.text),
        f"bag CHG123426A1B2C3-PRC-02 in {SHIPMENT}",
        item=f"shipment:{SHIPMENT} unit:CHG123426A1B2C3-PRC-02",
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
        Submit(
            "store",
            (bag.detection.text,),
            "bag CHG123426A1B2C3-PRC-01",
            storage_location="LN2-3 rack B",
            item="unit:CHG123426A1B2C3-PRC-01",
        )
    ]
    (info,) = frame(workflow, 1.0, p(SHIPMENT))
    assert isinstance(info, Verdict)


def test_context_codes_alone_record_nothing() -> None:
    workflow = Workflow(Mode.RECEIVE)
    din = p(Din.build("G1234", "17", "654321").barcode)
    assert frame(workflow, 0.0, p(COI_A.barcode), din, p("LGR-T4X9002")) == []


# ----------------------------------------------------------------------------------- bedside
#
# Symbols are placed as on the rendered labels (203 dpi): a bag's QR code (150 px) with its COI Code 128
# to the left and its DIN below that; a wristband's QR code (125 px) with its COI Code 128 to the right.
# A bag is drawn at x0 = 0, a wristband at x0 = 2000 (far apart) unless a test says otherwise.

DIN = Din.build("G1234", "26", "654321")


def at(text: str, symbology: str, x0: int, y0: int, x1: int, y1: int) -> Parsed:
    polygon = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    result = interpret(Detection(text, symbology, polygon, "zxing"))
    assert isinstance(result, Parsed), result
    return result


def band_symbols(coi: Coi = COI_A, x: int = 2000, code: Coi | None = None) -> list[Parsed]:
    """A wristband's QR code and its COI Code 128 (``code`` overrides the Code 128's COI: a misread)."""
    return [
        at(encode_qr_payload(coi), "qr", x, 40, x + 125, 165),
        at((code or coi).barcode, "code128", x + 200, 16, x + 621, 111),
    ]


def bag_symbols(
    coi: Coi = COI_A, x: int = 0, code: Coi | None = None, din: Din | None = DIN, qr: bool = True
) -> list[Parsed]:
    """A bag label's QR code (its unit), COI Code 128 and DIN Code 128."""
    symbols = [at((code or coi).barcode, "code128", x + 36, 87, x + 457, 182)]
    if din is not None:
        symbols.append(at(din.barcode, "code128", x + 36, 230, x + 325, 325))
    if qr:
        unit_id = UnitId(coi, UnitKind.FINAL_PRODUCT, 1)
        symbols.append(at(encode_qr_payload(unit_id), "qr", x + 609, 40, x + 759, 190))
    return symbols


def bedside() -> Workflow:
    return Workflow(Mode.BEDSIDE_VERIFY)


def frames(workflow: Workflow, t0: float, symbols: list[Parsed], n: int = 2) -> list[Step]:
    steps: list[Step] = []
    for i in range(n):
        steps += frame(workflow, t0 + 0.1 * i, *symbols)
    return steps


def levels(steps: list[Step]) -> list[Level]:
    return [step.level for step in steps if isinstance(step, Verdict)]


def test_bedside_ok_when_the_bag_belongs_to_the_wristband() -> None:
    workflow = bedside()
    assert frame(workflow, 0.0, *band_symbols()) == []  # one frame is not enough
    (band,) = frame(workflow, 0.1, *band_symbols())
    assert band.level is Level.INFO
    assert workflow.wristband == COI_A
    assert frame(workflow, 2.0, *bag_symbols()) == []
    (verdict,) = frame(workflow, 2.1, *bag_symbols())
    assert isinstance(verdict, Verdict)
    assert verdict.level is Level.OK
    assert "CHG123426A1B2C3-PRC-01" in verdict.message


def test_bedside_stops_when_the_bag_belongs_to_someone_else() -> None:
    workflow = bedside()
    frames(workflow, 0.0, band_symbols(COI_A))
    (verdict,) = frames(workflow, 2.0, bag_symbols(COI_B))
    assert isinstance(verdict, Verdict)
    assert verdict.level is Level.STOP
    assert COI_A.eye_readable in verdict.message
    assert COI_B.eye_readable in verdict.message


def test_a_bag_before_any_wristband_only_prompts_and_is_compared_when_the_wristband_comes() -> None:
    workflow = bedside()
    (verdict,) = frames(workflow, 0.0, bag_symbols())
    assert isinstance(verdict, Verdict)
    assert verdict.level is Level.INFO
    assert "wristband first" in verdict.message
    # The wristband joins the bag still in view: compared at once, in either order.
    steps = frames(workflow, 0.2, [*bag_symbols(), *band_symbols()])
    assert levels(steps) == [Level.OK]


def test_a_bare_coi_barcode_never_counts_as_a_wristband() -> None:
    workflow = bedside()
    coi = at(COI_A.barcode, "code128", 100, 100, 521, 195)
    for i in range(30):  # 3 s alone in view
        assert frame(workflow, 0.1 * i, coi) == []
    assert workflow.wristband is None
    assert levels(frames(workflow, 5.0, bag_symbols())) == [Level.INFO]  # never a false OK


def test_a_bag_only_pan_never_matches() -> None:
    """The pan of the issue: the bag label whole, then its COI Code 128 alone for half a second."""
    workflow = bedside()
    steps = frames(workflow, 0.0, bag_symbols(), n=5)
    steps += frames(workflow, 0.5, [at(COI_A.barcode, "code128", 36, 87, 457, 182)], n=6)
    steps += frames(workflow, 1.1, bag_symbols(), n=5)
    assert Level.OK not in levels(steps)
    assert Level.STOP not in levels(steps)
    assert workflow.wristband is None


def test_a_qr_with_a_coi_payload_in_another_symbology_is_no_wristband() -> None:
    workflow = bedside()
    fake = at(encode_qr_payload(COI_A), "datamatrix", 2000, 40, 2125, 165)
    assert frames(workflow, 0.0, [fake], n=5) == []
    assert workflow.wristband is None


@pytest.mark.parametrize(
    "symbols",
    [
        pytest.param(bag_symbols(COI_A, code=COI_B), id="bag COI Code 128 misread"),
        # The case: a small bag label (1.4 px per module, 3 deg) whose COI Code 128 was read with
        # another FIN; the QR code on the same label says otherwise.
        pytest.param(bag_symbols(COI_A, code=Coi("G1284", "26", "A1B2C3")), id="COI read as another FIN"),
        pytest.param(band_symbols(COI_A, code=COI_B), id="wristband COI Code 128 misread"),
        pytest.param(
            [*band_symbols(COI_A)[:1], at(DIN.barcode, "code128", 2200, 16, 2489, 111)], id="DIN on band"
        ),
        pytest.param(
            [*bag_symbols(), at(Din.build("G1234", "26", "111111").barcode, "code128", 400, 230, 600, 325)],
            id="two DINs on a bag",
        ),
        pytest.param(
            [*bag_symbols(din=None), at(UNIT_A2.text, "code128", 36, 230, 568, 302)],
            id="unit id Code 128 names another bag of the patient",
        ),
        pytest.param(
            [
                *bag_symbols(din=None),
                at(UnitId(COI_B, UnitKind.FINAL_PRODUCT, 1).text, "code128", 36, 230, 568, 302),
            ],
            id="unit id Code 128 names another patient's bag",
        ),
    ],
)
def test_symbols_that_disagree_on_one_label_give_neither_match_nor_stop(symbols: list[Parsed]) -> None:
    for first in (band_symbols(COI_A), band_symbols(COI_B)):
        workflow = bedside()
        frames(workflow, 0.0, first)
        steps = frames(workflow, 2.0, symbols, n=10)
        assert Level.OK not in levels(steps)
        assert Level.STOP not in levels(steps)
        assert workflow.discarded == 10
        assert levels(steps) == [Level.INFO]  # said once, not every frame


def test_a_wristband_and_a_bag_of_different_patients_in_one_frame_stop_once() -> None:
    workflow = bedside()
    steps = frames(workflow, 0.0, [*band_symbols(COI_A), *bag_symbols(COI_B)], n=10)
    assert levels(steps) == [Level.STOP]


def test_a_bag_read_with_another_din_starts_over() -> None:
    workflow = bedside()
    frames(workflow, 0.0, band_symbols())
    other = Din.build("G1234", "26", "111111")
    steps = frame(workflow, 2.0, *bag_symbols(din=DIN))
    steps += frame(workflow, 2.1, *bag_symbols(din=other))
    assert steps == []
    assert levels(frame(workflow, 2.2, *bag_symbols(din=None))) == [Level.OK]


def test_a_damaged_symbol_on_a_label_discards_the_frame_and_a_loose_one_stops_when_read_twice() -> None:
    damaged = Detection(
        "=G12341765432171", "code128", ((36, 230), (325, 230), (325, 325), (36, 325)), "zxing"
    )
    workflow = bedside()
    frames(workflow, 0.0, band_symbols())
    steps = []
    for i in range(4):
        steps += workflow.on_frame(2.0 + 0.1 * i, bag_symbols(din=None), [], [damaged])
    assert Level.OK not in levels(steps)
    assert Level.STOP not in levels(steps)
    loose = Detection("=G12341765432171", "code128", ((5000, 0), (5300, 0)), "zxing")
    assert workflow.on_frame(3.0, [], [], [loose]) == []
    (stop,) = workflow.on_frame(3.1, [], [], [loose])
    assert isinstance(stop, Verdict)
    assert stop.level is Level.STOP


def bag_without_din_above_band(*, bag_qr: bool = True) -> list[Parsed]:
    """Where the symbols are when a bag label without a DIN (203 dpi) is held 40 px above a wristband of
    another patient: measured on the rendered labels. The bag's unit id Code 128 is 532 px wide."""
    bag_unit = UnitId(COI_A, UnitKind.FINAL_PRODUCT, 1)
    symbols = [
        at(COI_A.barcode, "code128", 36, 247, 458, 319),
        at(bag_unit.text, "code128", 36, 363, 568, 435),
        at(COI_B.barcode, "code128", 423, 665, 845, 761),
        at(encode_qr_payload(COI_B), "qr", 223, 688, 349, 814),
        at(encode_qr_payload(COI_B), "qr", 1682, 688, 1808, 814),
    ]
    if bag_qr:
        symbols.append(at(encode_qr_payload(bag_unit), "qr", 609, 40, 760, 191))
    return symbols


@pytest.mark.parametrize("bag_qr", [True, False], ids=["bag QR read", "bag QR unread"])
def test_a_unit_id_code_128_does_not_reach_a_wristband_below_the_bag(bag_qr: bool) -> None:
    frame_labels = read_labels(bag_without_din_above_band(bag_qr=bag_qr))
    assert frame_labels.disagreement is None
    checked = {(read.kind, read.coi) for read in frame_labels.labels if read.checked}
    assert checked == {(LabelKind.BAG, COI_A), (LabelKind.WRISTBAND, COI_B)}
    bags = {read.unit for read in frame_labels.labels if read.kind is LabelKind.BAG}
    assert bags == {UnitId(COI_A, UnitKind.FINAL_PRODUCT, 1)}
    workflow = bedside()
    steps = frames(workflow, 0.0, bag_without_din_above_band(bag_qr=bag_qr), n=10)
    assert levels(steps) == [Level.STOP]
    assert workflow.discarded == 0


def test_a_linear_anchor_is_as_big_as_its_bars_are_high_at_any_tilt() -> None:
    """532 x 72 px, flat and turned by about 30 degrees (cos 0.866, sin 0.5)."""
    flat = Detection("x", "code128", ((0, 0), (532, 0), (532, 72), (0, 72)), "zxing")
    tilted = Detection("x", "code128", ((0, 0), (461, 266), (425, 328), (-36, 62)), "zxing")
    qr = Detection("x", "qr", ((0, 0), (150, 0), (150, 150), (0, 150)), "zxing")
    assert symbol_size(flat) == 72
    assert 70 <= symbol_size(tilted) <= 74
    assert symbol_size(qr) == 151  # the bounding box, as before


def test_a_shipment_id_is_no_bag() -> None:
    workflow = bedside()
    frames(workflow, 0.0, band_symbols())
    assert frames(workflow, 1.0, [p(ShipmentId(2026, 1).text)]) == []


def test_only_the_wristband_label_carries_a_coi_qr_payload() -> None:
    """The wristband's anchor is its ``CT1:COI:`` QR code: no other label kind may print one."""
    labels = {
        "bag": bag_label(),
        "shipment": shipment(),
        "wristband": wristband(),
        "giai": AssetTag(asset=Giai.build("7612345", "SHIPPER0042")),
        "logger": AssetTag(asset=LoggerId("T4X9002")),
    }
    for name, label in labels.items():
        texts = [r.text for r in zxingcpp.read_barcodes(label_image(label, dpi=300))]
        coi_qr = [text for text in texts if text.startswith("CT1:COI:")]
        assert bool(coi_qr) == (name == "wristband"), (name, texts)
