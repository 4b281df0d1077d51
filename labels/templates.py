"""Where each label kind puts its codes and text, built on the layout engine.

One Code 128 per ISBT 128 data structure (content exactly as the standard writes it), a QR code with
the Celltrail payload, GS1 Data Matrix for GS1 keys, and the eye-readable form under each code with
the check character boxed.
"""

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Final

import msgspec

from celltrail_shared.identifiers import Giai, encode_qr_payload
from labels import stock as sizes
from labels.fonts import LINE_HEIGHT, text_width
from labels.investigational import SAMPLE_2X1, layout_sample, place_statement
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
    PatientField,
    SampleLabel,
    ShipmentLabel,
    WristbandLabel,
    check_wristband_policy,
)
from labels.stock import MM_PER_INCH, Stock, check_dpi, to_mm
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
    # 4 x 3 in: the COI, DIN and product code, product, lot, volume, expiry and storage at legible sizes.
    BagLabel: sizes.BAG_4X3,
    ShipmentLabel: sizes.SHIPMENT_4X6,
    WristbandLabel: sizes.WRISTBAND_1X10,
    AssetTag: sizes.ASSET_2X1,
    SampleLabel: SAMPLE_2X1,
}


def layout_label(
    label: Label,
    dpi: int,
    stock: Stock | None = None,
    measure: Measure = text_width,
    *,
    wristband_requires: Collection[PatientField] = (),
) -> Layout:
    """Place everything ``label`` shows on ``stock`` (the kind's default if None) for a ``dpi`` printer.

    ``wristband_requires`` is the site's policy: the patient fields a wristband must carry (a wristband
    lacking one is refused with :class:`labels.model.LabelPolicyError`).
    """
    check_dpi(dpi)
    if isinstance(label, WristbandLabel):
        check_wristband_policy(label, wristband_requires)
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
        case SampleLabel():
            layout_sample(label, builder, measure)
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


class _Structure(msgspec.Struct, frozen=True):
    """One linear code on the bag and the eye-readable line under it."""

    caption: str
    content: str
    body: str
    check: str | None = None


def _bag_structures(label: BagLabel) -> list[_Structure]:
    """The bag's Code 128 symbols, COI first (it sits nearest the QR code, whose unit it must agree with).

    A 1-D scanner must be able to identify the bag, not only its patient: the DIN (ISBT 128 data
    structure 001) does that where the unit has one, next to the product code (003) as the standard's bag
    labels print them; a unit without a DIN carries its unit id instead, which ``parse_identifier`` reads
    as the same unit as the QR code's ``CT1:UNIT:`` payload.
    """
    coi = label.coi
    structures = [_Structure("COI", coi.barcode, coi.eye_readable_body, coi.check)]
    product = None
    if label.product_code_barcode is not None and label.product_code is not None:
        product = _Structure("PRODUCT", label.product_code_barcode, label.product_code)
    if label.din is not None:
        # Product code left, DIN right: the DIN then lies under the QR code, close enough for a scanner
        # to check that it belongs to this bag.
        din = _Structure("DIN", label.din.barcode, label.din.eye_readable_body, label.din.check)
        structures.extend([product, din] if product is not None else [din])
    else:
        structures.append(_Structure("UNIT", label.unit.barcode, label.unit.text))
        structures.extend([product] if product is not None else [])
    return structures


def _nominal_width(symbol: Symbol, dpi: int) -> float:
    """Width of ``symbol`` with its quiet zones at the nominal X dimension rounded to whole dots."""
    dots = max(1, round(LINEAR_MODULE * dpi / MM_PER_INCH))
    return (symbol.columns + 2 * symbol.quiet_zone) * to_mm(dots, dpi)


def _rows(symbols: list[Symbol], width: float, dpi: int, gap: float) -> list[list[int]]:
    """Indexes of ``symbols`` in rows: side by side where both fit at the nominal X dimension."""
    rows: list[list[int]] = []
    used = 0.0
    for index, symbol in enumerate(symbols):
        need = _nominal_width(symbol, dpi)
        # The COI keeps a row of its own: it is the code a bedside scanner checks against the QR code.
        if rows and index > 1 and used + gap + need <= width + 1e-6:
            rows[-1].append(index)
            used += gap + need
        else:
            rows.append([index])
            used = need
    return rows


def _bag(label: BagLabel, builder: Builder, measure: Measure) -> None:
    inner = Rect(0, 0, builder.width, builder.height).inset(2.0)
    structures = _bag_structures(label)
    symbols = [code128(structure.content) for structure in structures]
    gap = 2.0
    rows = _rows(symbols, inner.w, builder.dpi, gap)
    id_height = _line_height(2.8) + 0.6
    row_gap = 1.2
    bar_height = min(10.0, max(5.0, (inner.h - 30.0) / len(rows) - id_height - row_gap))
    row_height = bar_height + 0.4 + id_height + row_gap

    # The codes' room is reserved first, at the sizes scanners need; the text and the QR code must fit
    # above them (or the label is refused, never shortened). The codes then sit right under that text,
    # not at the foot of the label: a scanner groups a code with the QR code only within 2.5 QR sizes.
    codes_height = len(rows) * row_height - row_gap + 1.5
    top_area = Rect(inner.x, inner.y, inner.w, max(0.0, inner.h - codes_height))
    top = Builder(builder.width, builder.height, builder.dpi)
    used = _bag_top(label, top_area, top, measure)
    builder.merge(top)

    stack = Stack(Rect(inner.x, used + 1.5, inner.w, max(0.0, inner.bottom - used - 1.5)))
    for row in rows:
        bars_row = stack.take(bar_height + 0.4)
        line = stack.take(id_height)
        stack.skip(row_gap)
        total = sum(_nominal_width(symbols[i], builder.dpi) for i in row)
        x = bars_row.x
        for i in row:
            share = bars_row.w * _nominal_width(symbols[i], builder.dpi) / total
            cell = Rect(x, bars_row.y, share - (gap if len(row) > 1 else 0.0), bars_row.h)
            x += share
            bars = _linear(symbols[i], cell, builder, bar_height=bar_height, min_bar_height=5.0)
            text_area = Rect(bars.x, line.y, cell.right - bars.x, line.h)
            structure = structures[i]
            builder.add(
                fit_identifier(
                    structure.body,
                    text_area,
                    measure,
                    max_size=2.8,
                    min_size=1.8,
                    check=structure.check,
                    caption=structure.caption,
                )
            )


def _bag_top(label: BagLabel, area: Rect, builder: Builder, measure: Measure) -> float:
    """The bag's text (left) and QR code with the unit id (right) in ``area``; returns the lowest y used."""
    left_area, right_area = area.split_right(28.0, gap=2.0)
    right = Stack(right_area)
    unit_height = _line_height(2.4) + 0.6
    # The QR code leaves room below it for the unit id (its modules shrink on a low label).
    qr_area = Rect(right_area.x, right_area.y, right_area.w, max(0.0, right_area.h - unit_height - 0.2))
    code = _matrix(qr(encode_qr_payload(label.unit)), qr_area, builder, Align.CENTER, module=BAG_QR_MODULE)
    right.advance_to(code.outer.bottom + 0.2)
    unit_line = builder.add(
        fit_identifier(
            label.unit.text, right.remaining, measure, max_size=2.4, min_size=1.4, align=Align.CENTER
        )
    )
    right.skip(unit_line.height)

    left = Stack(left_area)
    if label.autologous:
        block = fit_text(
            AUTOLOGOUS_WARNING,
            left.take(_line_height(3.4)),
            measure,
            max_size=3.4,
            min_size=2.2,
            bold=True,
            field="autologous statement",
        )
        builder.add(block)
        left.skip(0.5)
    place_statement(label.trial, left, builder, measure, max_size=2.2, min_size=1.6)
    block = builder.add(
        fit_text(
            label.product, left.remaining, measure, max_size=2.8, min_size=1.8, max_lines=3, field="product"
        )
    )
    left.skip(block.height + 0.8)
    facts = [
        ("lot", f"LOT {label.lot}" if label.lot is not None else None),
        ("volume", f"VOL {label.volume}" if label.volume is not None else None),
        ("expiry", "EXP " + _format_expiry(label.expiry)),
        ("storage temperature", "STORE " + label.storage_temp),
    ]
    for field, text in facts:
        if text is None:
            continue
        block = builder.add(
            fit_text(
                text, left.remaining, measure, max_size=2.6, min_size=1.6, bold=True, max_lines=2, field=field
            )
        )
        left.skip(block.height + 0.6)
    return max(left.y, right.y)


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

    # The text takes what the codes leave; the second QR code sits at the far end of the printable part.
    text_area, second_qr_area = rest.split_right(inner.h, gap=4.0)
    text = Stack(text_area)
    block = builder.add(
        fit_text("CHAIN OF IDENTITY", text.remaining, measure, max_size=3.4, min_size=2.2, bold=True)
    )
    text.skip(block.height + 0.6)
    place_statement(label.trial, text, builder, measure, max_size=1.8, min_size=1.4)
    if label.patient_name is not None:
        block = builder.add(
            fit_text(
                label.patient_name,
                text.remaining,
                measure,
                max_size=3.2,
                min_size=2.0,
                bold=True,
                max_lines=2,
                field="patient name",
            )
        )
        text.skip(block.height + 0.4)
    facts = []
    if label.date_of_birth is not None:
        facts.append(("date of birth", "DOB " + label.date_of_birth.isoformat()))
    if label.hospital_number is not None:
        facts.append(("hospital number", "HOSP NO " + label.hospital_number))
    for field, fact in facts:
        block = builder.add(
            fit_text(fact, text.remaining, measure, max_size=2.8, min_size=1.8, bold=True, field=field)
        )
        text.skip(block.height + 0.3)
    text.skip(0.3)
    builder.add(
        fit_text(
            "Match this COI with the product bag label before infusion.",
            text.remaining,
            measure,
            max_size=2.8,
            min_size=1.6,
            max_lines=3,
            field="instruction",
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
        pass
    try:
        return fit_text(giai.value, area, measure, max_size=2.6, min_size=1.4, max_lines=3)
    except LayoutError:
        raise LayoutError(f"GIAI {giai.value} does not fit the tag: use a larger stock") from None
