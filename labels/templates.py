"""Where each label kind puts its codes and text, built on the layout engine.

One Code 128 per ISBT 128 data structure (content exactly as the standard writes it), a QR code with
the Celltrail payload, GS1 Data Matrix for GS1 keys, and the eye-readable form under each code with
the check character boxed.
"""

from datetime import datetime, timedelta
from typing import Final

from backend.domain.identifiers import Giai, encode_qr_payload
from labels.fonts import LINE_HEIGHT, text_width
from labels.layout import (
    Align,
    Block,
    Builder,
    Layout,
    LayoutError,
    Measure,
    PlacedBox,
    PlacedCode,
    Rect,
    Stack,
    fit_identifier,
    fit_marks,
    fit_text,
    place_code,
    rule,
)
from labels.model import (
    AUTOLOGOUS_WARNING,
    MARK_TEXT,
    AssetTag,
    BagLabel,
    Label,
    ShipmentLabel,
    WristbandLabel,
)
from labels.stock import ASSET_2X1, BAG_4X2, SHIPMENT_4X6, WRISTBAND_1X10, Stock, check_dpi
from labels.symbologies import Symbol, Symbology, code128, gs1_key_datamatrix, qr

# Code 128 X dimension: 0.25 mm nominal; never below 0.165 mm (two dots at 300 dpi).
LINEAR_MODULE: Final = 0.25
LINEAR_MIN_MODULE: Final = 0.165
# Matrix codes: 0.5 mm modules for phone cameras (0.8 mm on shipping labels, read from further away),
# 0.25 mm at the least. ZPL's ^BQ magnification stops at 10 dots.
MATRIX_MODULE: Final = 0.5
SHIPPING_MATRIX_MODULE: Final = 0.8
BAG_QR_MODULE: Final = 0.7  # fills the bag label's right column
WRISTBAND_QR_MODULE: Final = 0.6  # as large as the band's height allows
MATRIX_MIN_MODULE: Final = 0.25
QR_MAX_DOTS: Final = 10

DEFAULT_STOCK: Final = {
    BagLabel: BAG_4X2,
    ShipmentLabel: SHIPMENT_4X6,
    WristbandLabel: WRISTBAND_1X10,
    AssetTag: ASSET_2X1,
}


def layout_label(label: Label, dpi: int, stock: Stock | None = None, measure: Measure = text_width) -> Layout:
    """Place everything ``label`` shows on ``stock`` (the kind's default if None) for a ``dpi`` printer."""
    check_dpi(dpi)
    stock = stock or DEFAULT_STOCK[type(label)]
    builder = Builder(stock.width_mm, stock.height_mm, dpi)
    match label:
        case BagLabel():
            _bag(label, builder, measure)
        case ShipmentLabel():
            _shipment(label, builder, measure)
        case WristbandLabel():
            _wristband(label, builder, measure)
        case AssetTag():
            _asset(label, builder, measure)
    return builder.build()


def _linear(
    symbol: Symbol, area: Rect, builder: Builder, *, bar_height: float, min_bar_height: float
) -> PlacedCode:
    return builder.add_code(
        place_code(
            symbol,
            area,
            builder.dpi,
            module=LINEAR_MODULE,
            min_module=LINEAR_MIN_MODULE,
            bar_height=bar_height,
            min_bar_height=min_bar_height,
        )
    )


def _matrix(
    symbol: Symbol,
    area: Rect,
    builder: Builder,
    align: Align = Align.LEFT,
    *,
    module: float = MATRIX_MODULE,
    middle: bool = False,
) -> PlacedCode:
    return builder.add_code(
        place_code(
            symbol,
            area,
            builder.dpi,
            module=module,
            min_module=MATRIX_MIN_MODULE,
            max_module_dots=QR_MAX_DOTS if symbol.symbology is Symbology.QR else None,
            align=align,
            middle=middle,
        )
    )


def _format_expiry(expiry: datetime) -> str:
    text = expiry.strftime("%Y-%m-%d %H:%M")
    offset = expiry.utcoffset()
    if offset is None:
        return text
    if offset == timedelta(0):
        return f"{text} UTC"
    return f"{text} {expiry.strftime('%z')[:3]}:{expiry.strftime('%z')[3:]}"


def _line_height(size: float) -> float:
    return size * LINE_HEIGHT


# --------------------------------------------------------------------------------------- bag


def _bag(label: BagLabel, builder: Builder, measure: Measure) -> None:
    inner = Rect(0, 0, builder.width, builder.height).inset(2.0)
    left_area, right_area = inner.split_right(28.0, gap=2.0)

    right = Stack(right_area)
    code = _matrix(
        qr(encode_qr_payload(label.unit)), right.remaining, builder, Align.CENTER, module=BAG_QR_MODULE
    )
    right.advance_to(code.outer.bottom + 0.2)
    unit_line = builder.add(
        fit_identifier(
            label.unit.text, right.remaining, measure, max_size=2.4, min_size=1.4, align=Align.CENTER
        )
    )
    right.skip(unit_line.height + 1.2)
    for text in ("EXP " + _format_expiry(label.expiry), "STORE " + label.storage_temp):
        block = builder.add(
            fit_text(text, right.remaining, measure, max_size=2.6, min_size=1.6, bold=True, max_lines=2)
        )
        right.skip(block.height + 0.8)

    left = Stack(left_area)
    block = fit_text(
        AUTOLOGOUS_WARNING, left.take(_line_height(3.4)), measure, max_size=3.4, min_size=2.2, bold=True
    )
    builder.add(block)
    left.skip(0.5)
    block = builder.add(
        fit_text(label.product, left.remaining, measure, max_size=2.8, min_size=1.8, max_lines=2)
    )
    left.skip(block.height + 1.2)

    structures = [("COI", label.coi.barcode, label.coi.eye_readable_body, label.coi.check)]
    if label.din is not None:
        structures.append(("DIN", label.din.barcode, label.din.eye_readable_body, label.din.check))
    id_height = _line_height(2.8) + 0.6
    gap = 1.5
    per_block = (left.remaining.h - gap * (len(structures) - 1)) / len(structures)
    bar_height = min(12.0, per_block - id_height - 0.8)
    for caption, content, body, check in structures:
        bars = _linear(code128(content), left.remaining, builder, bar_height=bar_height, min_bar_height=5.0)
        left.advance_to(bars.outer.bottom + 0.8)
        text_area = Rect(bars.x, left.y, left.remaining.right - bars.x, left.remaining.h)
        line = builder.add(
            fit_identifier(body, text_area, measure, max_size=2.8, min_size=1.8, check=check, caption=caption)
        )
        left.skip(line.height + gap)


# --------------------------------------------------------------------------------------- shipment


def _shipment(label: ShipmentLabel, builder: Builder, measure: Measure) -> None:
    stack = Stack(Rect(0, 0, builder.width, builder.height).inset(3.0))

    # Codes first, from the bottom up, at sizes scanners need; text then shrinks into what is left.
    if label.logger is not None:
        line = stack.take_bottom(_line_height(3.0) + 0.6)
        bars_area = stack.take_bottom(10.0)
        _linear(code128(label.logger.barcode), bars_area, builder, bar_height=10.0, min_bar_height=10.0)
        builder.add(
            fit_identifier(label.logger.text, line, measure, max_size=3.0, min_size=2.0, caption="LOGGER")
        )
        stack.take_bottom(2.5)

    row = stack.take_bottom(34.0)
    qr_area, sscc_area = row.split_left(row.w / 2)
    text_height = _line_height(3.0) + 0.6
    qr_code = _matrix(
        qr(encode_qr_payload(label.shipment)),
        Rect(qr_area.x, qr_area.y, qr_area.w, qr_area.h - text_height),
        builder,
        Align.CENTER,
        module=SHIPPING_MATRIX_MODULE,
    )
    builder.add(
        fit_identifier(
            label.shipment.text,
            Rect(qr_area.x, qr_code.outer.bottom + 0.3, qr_area.w, row.bottom - qr_code.outer.bottom - 0.3),
            measure,
            max_size=3.0,
            min_size=2.0,
            align=Align.CENTER,
        )
    )
    if label.sscc is not None:
        dm_area = Rect(sscc_area.x, sscc_area.y, sscc_area.w, sscc_area.h - text_height)
        dm = _matrix(
            gs1_key_datamatrix(label.sscc), dm_area, builder, Align.CENTER, module=SHIPPING_MATRIX_MODULE
        )
        text_area = Rect(sscc_area.x, dm.outer.bottom + 0.3, sscc_area.w, row.bottom - dm.outer.bottom - 0.3)
        builder.add(
            fit_identifier(
                f"(00) {label.sscc.digits}",
                text_area,
                measure,
                max_size=3.0,
                min_size=2.0,
                caption="SSCC",
                align=Align.CENTER,
            )
        )
    stack.take_bottom(2.0)

    id_line = stack.take_bottom(_line_height(4.0) + 0.6)
    bars_area = stack.take_bottom(18.0)
    _linear(code128(label.shipment.barcode), bars_area, builder, bar_height=18.0, min_bar_height=8.0)
    builder.add(
        fit_identifier(label.shipment.text, id_line, measure, max_size=4.0, min_size=2.4, caption="SHIPMENT")
    )
    stack.take_bottom(3.0)

    # Long site names with many handling marks may not fit at full size: try smaller text before failing.
    for scale in (1.0, 0.85, 0.7):
        part = Builder(builder.width, builder.height, builder.dpi)
        try:
            _shipment_text(label, stack.remaining, part, measure, scale)
        except LayoutError:
            continue
        builder.merge(part)
        return
    raise LayoutError("route, temperature and handling marks do not fit the shipping label")


def _shipment_text(
    label: ShipmentLabel, area: Rect, builder: Builder, measure: Measure, scale: float
) -> None:
    stack = Stack(area)
    sites = (("FROM", label.from_site, 3.6, False), ("TO", label.to_site, 5.0, True))
    for caption, site, size, bold in sites:
        caption_size = max(2.0, 2.4 * scale)
        builder.add(
            fit_text(
                caption,
                stack.take(_line_height(caption_size)),
                measure,
                max_size=caption_size,
                min_size=2.0,
                bold=True,
            )
        )
        block = builder.add(
            fit_text(
                site, stack.remaining, measure, max_size=size * scale, min_size=2.2, bold=bold, max_lines=3
            )
        )
        stack.skip(block.height + 1.2 * scale)
        builder.add_box(rule(stack.take(0.4), 0.4))
        stack.skip(1.2 * scale)

    band = stack.take(17.0 * scale)
    builder.add_box(PlacedBox(band, 0.6))
    inside = Stack(band.inset(1.5, 1.2))
    headline = builder.add(
        fit_text(
            label.temperature_headline,
            inside.remaining,
            measure,
            max_size=4.0 * scale,
            min_size=2.0,
            bold=True,
            align=Align.CENTER,
        )
    )
    inside.skip(headline.height + 0.5)
    builder.add(
        fit_text(
            label.temperature_range,
            inside.remaining,
            measure,
            max_size=7.0 * scale,
            min_size=2.4,
            bold=True,
            align=Align.CENTER,
        )
    )
    stack.skip(2.0 * scale)
    marks = [MARK_TEXT[mark] for mark in label.handling]
    builder.add(fit_marks(marks, stack.remaining, measure, max_size=3.2 * scale, min_size=2.0))


# --------------------------------------------------------------------------------------- wristband


def _wristband(label: WristbandLabel, builder: Builder, measure: Measure) -> None:
    # The ends of a wristband strip go under the clasp and through the loop: keep them clear.
    inner = Rect(0, 0, builder.width, builder.height).inset(25.0, 2.0)
    payload = encode_qr_payload(label.coi)
    first_qr_area, rest = inner.split_left(inner.h, gap=4.0)
    _matrix(qr(payload), first_qr_area, builder, Align.CENTER, module=WRISTBAND_QR_MODULE, middle=True)

    code_area, rest = rest.split_left(66.0, gap=4.0)
    column = Stack(code_area)
    id_line = column.take_bottom(_line_height(3.2) + 0.6)
    column.take_bottom(0.8)
    bars = _linear(code128(label.coi.barcode), column.remaining, builder, bar_height=12.0, min_bar_height=8.0)
    builder.add(
        fit_identifier(
            label.coi.eye_readable_body,
            Rect(bars.x, id_line.y, id_line.right - bars.x, id_line.h),
            measure,
            max_size=3.2,
            min_size=2.2,
            check=label.coi.check,
            caption="COI",
        )
    )

    text_area, second_qr_area = rest.split_left(60.0, gap=4.0)
    second_qr_area = second_qr_area.split_left(inner.h)[0]
    text = Stack(text_area)
    block = builder.add(
        fit_text("CHAIN OF IDENTITY", text.remaining, measure, max_size=3.4, min_size=2.2, bold=True)
    )
    text.skip(block.height + 0.8)
    builder.add(
        fit_text(
            "Match this COI with the product bag label before infusion.",
            text.remaining,
            measure,
            max_size=2.8,
            min_size=1.8,
            max_lines=3,
        )
    )
    _matrix(qr(payload), second_qr_area, builder, Align.CENTER, module=WRISTBAND_QR_MODULE, middle=True)


# --------------------------------------------------------------------------------------- asset tag


def _asset(label: AssetTag, builder: Builder, measure: Measure) -> None:
    inner = Rect(0, 0, builder.width, builder.height).inset(1.5)
    code_area, text_area = inner.split_left(inner.h, gap=1.0)
    text = Stack(text_area)
    if isinstance(label.asset, Giai):
        _matrix(gs1_key_datamatrix(label.asset), code_area, builder, Align.CENTER, middle=True)
        caption = builder.add(
            fit_text("ASSET GIAI (8004)", text.remaining, measure, max_size=2.4, min_size=1.6, bold=True)
        )
        text.skip(caption.height + 0.5)
        block = builder.add(_giai_text(label.asset, text.remaining, measure))
    else:
        _matrix(qr(encode_qr_payload(label.asset)), code_area, builder, Align.CENTER, middle=True)
        caption = builder.add(
            fit_text("LOGGER", text.remaining, measure, max_size=2.4, min_size=1.6, bold=True)
        )
        text.skip(caption.height + 0.5)
        block = builder.add(
            fit_identifier(label.asset.text, text.remaining, measure, max_size=2.6, min_size=1.4)
        )
    text.skip(block.height + 0.8)
    if label.description:
        builder.add(
            fit_text(label.description, text.remaining, measure, max_size=2.2, min_size=1.4, max_lines=4)
        )


def _giai_text(giai: Giai, area: Rect, measure: Measure) -> Block:
    """The GIAI on one line if it fits at a readable size, else wrapped; never cut."""
    try:
        return fit_identifier(giai.value, area, measure, max_size=2.6, min_size=1.6)
    except LayoutError:
        block = fit_text(giai.value, area, measure, max_size=2.6, min_size=1.4, max_lines=3)
    if block.truncated:
        raise LayoutError(f"GIAI {giai.value} does not fit the tag: use a larger stock")
    return block
