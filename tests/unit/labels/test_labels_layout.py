"""Layout geometry: nothing leaves the label, codes keep their quiet zones, text shrinks or wraps."""

import math
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celltrail_shared.identifiers import (
    Coi,
    Din,
    Giai,
    LoggerId,
    ShipmentId,
    Sscc,
    UnitId,
    UnitKind,
)
from labels.api import render_label
from labels.fonts import LINE_HEIGHT, text_width
from labels.layout import (
    Align,
    Layout,
    LayoutError,
    Rect,
    fit_identifier,
    fit_marks,
    fit_text,
    place_code,
    wrap,
)
from labels.model import (
    AssetTag,
    BagLabel,
    HandlingMark,
    Label,
    ShipmentLabel,
    TemperatureProfile,
    WristbandLabel,
)
from labels.stock import ASSET_2X1, BAG_4X3, STOCKS, SUPPORTED_DPI, to_mm
from labels.symbologies import code128, gs1_key_datamatrix, qr
from labels.templates import layout_label

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
COI = Coi("G1234", "26", "A1B2C3")
EXPIRY = datetime(2026, 3, 14, 23, 59, tzinfo=UTC)


def fake_measure(text: str, size: float, bold: bool) -> float:
    return len(text) * size * (0.65 if bold else 0.6)


# ----------------------------------------------------------------------------------------- primitives


def test_rect_splits_and_insets() -> None:
    area = Rect(0, 0, 100, 50)
    left, right = area.split_right(30, gap=2)
    assert (left.w, right.x, right.w) == (68, 70, 30)
    assert area.inset(2) == Rect(2, 2, 96, 46)
    assert area.contains(left)
    assert area.contains(right)
    assert not left.overlaps(right)


def test_short_text_is_placed_at_its_largest_size_on_one_line() -> None:
    block = fit_text("COI", Rect(0, 0, 50, 10), fake_measure, max_size=3, min_size=1)
    assert [(t.text, t.size) for t in block.texts] == [("COI", 3)]


def test_text_slightly_too_wide_shrinks_rather_than_wraps() -> None:
    text = "x" * 30  # 54 mm at 3 mm; fits at 2.76 mm in 50 mm
    block = fit_text(text, Rect(0, 0, 50, 10), fake_measure, max_size=3, min_size=1)
    assert len(block.texts) == 1
    assert block.texts[0].size < 3
    assert block.texts[0].width <= 50


def test_long_text_wraps_onto_lines() -> None:
    text = "Autologous anti-CD19 CAR-T cells suspension for intravenous infusion"
    block = fit_text(text, Rect(0, 0, 50, 20), fake_measure, max_size=3, min_size=1.5, max_lines=3)
    assert len(block.texts) > 1
    assert " ".join(t.text for t in block.texts) == text
    assert all(t.width <= 50 for t in block.texts)


def test_text_that_cannot_fit_is_refused_naming_it_never_cut() -> None:
    # Issue 19: "...nitrogen at o..." was printed and the command exited 0.
    text = "Store in the vapour phase of liquid nitrogen at or below -150 C " * 3
    with pytest.raises(LayoutError) as refused:
        fit_text(
            text, Rect(0, 0, 30, 4), fake_measure, max_size=3, min_size=1.5, max_lines=2, field="storage"
        )
    message = str(refused.value)
    assert message.startswith("storage 'Store in the vapour phase of liquid")
    assert "does not fit" in message
    assert "smallest legible size (1.5 mm)" in message
    assert "larger label stock" in message


def test_text_with_no_room_for_one_line_is_refused() -> None:
    with pytest.raises(LayoutError, match="room for 0"):
        fit_text("hello", Rect(0, 0, 30, 1), fake_measure, max_size=3, min_size=1.5)


def test_long_text_shrinks_to_the_minimum_and_wraps_before_it_is_refused() -> None:
    text = "Store in the vapour phase of liquid nitrogen at or below -150 C"
    block = fit_text(text, Rect(0, 0, 40, 6), fake_measure, max_size=3, min_size=1.2, max_lines=3)
    assert " ".join(t.text for t in block.texts) == text  # every word, none cut
    assert 1.2 <= block.texts[0].size < 3
    assert len(block.texts) > 1


def test_wrap_breaks_a_word_longer_than_the_line() -> None:
    assert wrap("ABCDEFGHIJ", 3.0, 1.0, False, fake_measure) == ["ABCDE", "FGHIJ"]


@given(
    st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), max_size=300),
    st.floats(5, 120),
    st.floats(2, 40),
    st.integers(1, 4),
)
def test_fitted_text_never_leaves_its_area(text: str, width: float, height: float, lines: int) -> None:
    area = Rect(3, 4, width, height)
    try:
        block = fit_text(text, area, text_width, max_size=4, min_size=1.5, max_lines=lines)
    except LayoutError:
        # Refused only when the whole text cannot be set at the minimum size in the lines allowed.
        room = min(lines, math.floor(height / (1.5 * LINE_HEIGHT) + 1e-9))
        normal = " ".join(text.split())
        assert len(wrap(normal, width, 1.5, False, text_width)) > room
        return
    assert len(block.texts) <= lines
    assert " ".join(t.text for t in block.texts).replace(" ", "") == "".join(text.split())
    for placed in block.texts:
        assert area.contains(placed.bounds), placed


@given(st.text(ALNUM, min_size=1, max_size=30), st.floats(20, 110), st.sampled_from(SUPPORTED_DPI))
def test_placed_code_keeps_its_quiet_zone_inside_the_area_or_refuses(
    content: str, width: float, dpi: int
) -> None:
    area = Rect(2, 2, width, 20)
    symbol = code128(content)
    smallest = math.ceil(0.165 * dpi / 25.4 - 0.05)
    if (symbol.columns + 20) * to_mm(smallest, dpi) > width:
        with pytest.raises(LayoutError, match="larger label stock"):
            place_code(symbol, area, dpi, module=0.25, min_module=0.165, bar_height=10, min_bar_height=5)
        return
    code = place_code(symbol, area, dpi, module=0.25, min_module=0.165, bar_height=10, min_bar_height=5)
    assert area.contains(code.outer)
    assert code.outer.w == pytest.approx((symbol.columns + 20) * to_mm(code.module_dots, dpi))
    assert to_mm(code.module_dots, dpi) >= 0.165 - 0.01


def test_module_is_a_whole_number_of_dots_near_the_target() -> None:
    symbol = qr("CT1:COI:CHG123426A1B2C3")
    assert place_code(symbol, Rect(0, 0, 50, 50), 203, module=0.5, min_module=0.25).module_dots == 4
    assert place_code(symbol, Rect(0, 0, 50, 50), 300, module=0.5, min_module=0.25).module_dots == 6
    capped = place_code(symbol, Rect(0, 0, 50, 50), 600, module=0.5, min_module=0.25, max_module_dots=10)
    assert capped.module_dots == 10


def test_matrix_code_shrinks_its_modules_to_fit() -> None:
    symbol = gs1_key_datamatrix(Sscc.build("0614141", "123456789", 1))
    roomy = place_code(symbol, Rect(0, 0, 40, 40), 300, module=0.5, min_module=0.25)
    tight = place_code(symbol, Rect(0, 0, 8, 8), 300, module=0.5, min_module=0.25)
    assert tight.module_dots < roomy.module_dots
    assert Rect(0, 0, 8, 8).contains(tight.outer)


def test_identifier_line_boxes_the_check_character_and_is_never_cut() -> None:
    block = fit_identifier(
        "CH G1234 26 A1B2C3", Rect(0, 0, 60, 6), text_width, max_size=3, min_size=2, check="4"
    )
    (box,) = block.boxes
    check = block.texts[-1]
    assert check.text == "4"
    assert box.rect.contains(check.bounds)
    with pytest.raises(LayoutError, match="does not fit"):
        fit_identifier("CH G1234 26 A1B2C3", Rect(0, 0, 15, 6), text_width, max_size=3, min_size=2, check="4")


def test_handling_marks_wrap_onto_rows_inside_the_area() -> None:
    area = Rect(0, 0, 60, 30)
    block = fit_marks(
        ["THIS WAY UP", "DO NOT X-RAY", "LIVING HUMAN CELLS"], area, text_width, max_size=3, min_size=2
    )
    assert len({box.rect.y for box in block.boxes}) > 1
    assert all(area.contains(box.rect) for box in block.boxes)
    for text, box in zip(block.texts, block.boxes, strict=True):
        assert box.rect.contains(text.bounds)


# ----------------------------------------------------------------------------------------- label templates

fins = st.builds(
    lambda a, b: a + b,
    st.sampled_from("ABCDEFGHIJKLMNPQRSTUVWXYZ123456789"),
    st.text(DIGITS, min_size=4, max_size=4),
)
cois = st.builds(
    Coi,
    fin=fins,
    year=st.text(DIGITS, min_size=2, max_size=2),
    sequence=st.text(ALNUM, min_size=6, max_size=6),
)
free_text = st.text(
    alphabet=st.characters(codec="latin-1", categories=["L", "N", "P", "Zs"]), min_size=1, max_size=200
).filter(str.strip)
bag_labels = st.builds(
    lambda unit, din, product, storage: BagLabel(
        coi=unit.coi, unit=unit, product=product, expiry=EXPIRY, din=din, storage_temp=storage
    ),
    st.builds(UnitId, coi=cois, kind=st.sampled_from(UnitKind), number=st.integers(1, 99)),
    st.none()
    | st.builds(Din.build, fin=fins, year=st.just("26"), sequence=st.text(DIGITS, min_size=6, max_size=6)),
    free_text,
    st.sampled_from(["≤ −150 °C", "2 °C to 8 °C"]) | free_text,
)
shipment_labels = st.builds(
    ShipmentLabel,
    shipment=st.builds(ShipmentId, year=st.integers(2000, 2099), sequence=st.integers(1, 999_999)),
    from_site=free_text,
    to_site=free_text,
    temperature_profile=st.sampled_from(TemperatureProfile),
    temperature_text=st.none() | free_text,
    sscc=st.none() | st.builds(Sscc.build, st.just("0614141"), st.text(DIGITS, min_size=9, max_size=9)),
    logger=st.none() | st.builds(LoggerId, st.text(ALNUM, min_size=1, max_size=20)),
    handling=st.lists(st.sampled_from(HandlingMark), unique=True).map(tuple),
)
asset_tags = st.builds(
    AssetTag,
    asset=st.builds(
        Giai.build, st.text(DIGITS, min_size=7, max_size=10), st.text(ALNUM + "-./", min_size=1, max_size=20)
    )
    | st.builds(LoggerId, st.text(ALNUM, min_size=1, max_size=20)),
    description=st.just("") | free_text,
)
any_label = st.one_of(bag_labels, shipment_labels, st.builds(WristbandLabel, cois), asset_tags)


def assert_nothing_overflows(layout: Layout) -> None:
    label = Rect(0, 0, layout.width, layout.height)
    for code in layout.codes:
        assert label.contains(code.outer), f"{code.symbol.content} quiet zone leaves the label"
        for other_code in layout.codes:
            assert other_code is code or not code.outer.overlaps(other_code.outer), "codes overlap"
        for text in layout.texts:
            assert not code.outer.overlaps(text.bounds), f"{text.text!r} is inside a code's quiet zone"
        for box in layout.boxes:
            assert not code.outer.overlaps(box.rect), "a box is inside a code's quiet zone"
    for text in layout.texts:
        assert label.contains(text.bounds), f"{text.text!r} leaves the label"
        for other_text in layout.texts:
            assert other_text is text or not text.bounds.overlaps(other_text.bounds), (
                f"{text.text!r} overlaps {other_text.text!r}"
            )
        for box in layout.boxes:
            # Text may sit inside a box (check character, mark, temperature band), never across its edge.
            inside = box.rect.contains(text.bounds) and not box.filled
            assert inside or not box.rect.overlaps(text.bounds), f"{text.text!r} crosses a box"
    for box in layout.boxes:
        assert label.contains(box.rect)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_label, st.sampled_from(SUPPORTED_DPI))
def test_no_label_content_overflows_or_covers_a_quiet_zone(label: Label, dpi: int) -> None:
    refusal = ""
    try:
        layout = layout_label(label, dpi)
    except LayoutError as refused:
        refusal = str(refused)
    if refusal:
        # Free text of up to 200 characters may not fit; it is then refused by name, never cut.
        assert "does not fit" in refusal
        return
    assert_nothing_overflows(layout)
    placed = "".join("".join(text.text.split()) for text in layout.texts)
    for free in _free_texts(label):
        assert "".join(free.split()) in placed, f"{free!r} was not printed whole"


def _free_texts(label: Label) -> list[str]:
    match label:
        case BagLabel():
            return [label.product]
        case ShipmentLabel():
            return []  # site names may wrap across lines, which a joined string does not show
        case AssetTag():
            return []
        case WristbandLabel():
            return []


def test_bag_label_carries_the_autologous_warning_and_one_code_per_isbt_structure() -> None:
    din = Din.build("G1234", "17", "654321")
    label = BagLabel(COI, UnitId(COI, UnitKind.FINAL_PRODUCT, 1), "CAR-T", EXPIRY, din=din)
    layout = layout_label(label, 300)
    assert "FOR AUTOLOGOUS USE ONLY" in [t.text for t in layout.texts]
    contents = [code.symbol.content for code in layout.codes]
    assert "&/CHG123426A1B2C3" in contents
    assert "=G12341765432170" in contents
    assert "CT1:UNIT:CHG123426A1B2C3-PRC-01" in contents
    boxed = [t.text for t in layout.texts if any(b.rect.contains(t.bounds) for b in layout.boxes)]
    assert COI.check in boxed
    assert din.check in boxed


def test_a_label_that_cannot_fit_its_stock_is_refused_not_cropped() -> None:
    with pytest.raises(LayoutError, match="larger"):
        layout_label(WristbandLabel(COI), 300, ASSET_2X1)


@pytest.mark.parametrize("stock", [BAG_4X3, *STOCKS.values()])
def test_bag_label_on_every_stock_large_enough_or_refused(stock: object) -> None:
    label = BagLabel(COI, UnitId(COI, UnitKind.FINAL_PRODUCT, 1), "CAR-T", EXPIRY)
    try:
        layout = layout_label(label, 203, stock)  # type: ignore[arg-type]
    except LayoutError:
        return
    assert_nothing_overflows(layout)


def test_layout_check_catches_an_overflow() -> None:
    # The checker itself must be able to fail.
    layout = layout_label(WristbandLabel(COI), 203)
    moved = msgspec.structs.replace(layout.texts[0], x=250.0)
    broken = Layout(layout.width, layout.height, layout.dpi, layout.codes, (moved,), layout.boxes)
    with pytest.raises(AssertionError):
        assert_nothing_overflows(broken)


def test_render_label_rejects_unknown_format_and_dpi() -> None:
    with pytest.raises(ValueError, match="format"):
        render_label(WristbandLabel(COI), "gif", 300)
    with pytest.raises(ValueError, match="dpi"):
        render_label(WristbandLabel(COI), "png", 150)


def test_centred_alignment_stays_inside() -> None:
    block = fit_text("CENTRED", Rect(10, 0, 40, 5), fake_measure, max_size=3, min_size=1, align=Align.CENTER)
    assert Rect(10, 0, 40, 5).contains(block.texts[0].bounds)
    assert block.texts[0].x > 10
