"""The investigational statement on a trial case's labels, and the biobank sample's small label.

Kept apart from :mod:`labels.templates` (which places the other kinds) so that each stays a readable size;
the templates call in here for the trial lines of the bag and the wristband and for the sample label."""

from typing import Final

from celltrail_shared.identifiers import encode_qr_payload
from labels.fonts import LINE_HEIGHT
from labels.layout import Align, Builder, Measure, Rect, Stack, fit_identifier, fit_text, place_code
from labels.model import SAMPLE_STATEMENT, BagLabel, Label, SampleLabel, TrialStatement
from labels.stock import Stock
from labels.symbologies import qr

# A cryovial or sample tube label: 2 x 1 in thermal-transfer stock, wrapped round the tube.
SAMPLE_2X1: Final = Stock("sample-2x1", 50.8, 25.4, "2 x 1 in sample tube label")
# A trial case's bag: 4 x 4 in, since the investigational statement does not fit
# beside a product code, lot, volume, expiry and storage on the 4 x 3 in stock.
TRIAL_BAG_4X4: Final = Stock("bag-4x4", 101.6, 101.6, "4 x 4 in bag label (a clinical trial's product)")
SAMPLE_QR_MODULE: Final = 0.4
SAMPLE_QR_MIN_MODULE: Final = 0.25


def place_statement(
    trial: TrialStatement | None,
    stack: Stack,
    builder: Builder,
    measure: Measure,
    *,
    max_size: float,
    min_size: float,
) -> None:
    """The statement (bold) and the trial's identifiers (up to four lines) from the top of ``stack``; text
    that does not fit at ``min_size`` refuses the label (LayoutError names it). Nothing without a trial."""
    if trial is None:
        return
    for index, (field, text) in enumerate(trial.lines()):
        block = builder.add(
            fit_text(
                text,
                stack.remaining,
                measure,
                max_size=max_size,
                min_size=min_size,
                bold=index == 0,
                max_lines=1 if index == 0 else 4,
                field=field,
            )
        )
        stack.skip(block.height + 0.3)
    stack.skip(0.3)


def layout_sample(label: SampleLabel, builder: Builder, measure: Measure) -> None:
    """QR code (the sample's unit id) left; the statement, unit id, COI, description and trial right."""
    inner = Rect(0, 0, builder.width, builder.height).inset(1.5)
    code_area, text_area = inner.split_left(inner.h, gap=1.0)
    builder.add_code(
        place_code(
            qr(encode_qr_payload(label.unit)),
            code_area,
            builder.dpi,
            module=SAMPLE_QR_MODULE,
            min_module=SAMPLE_QR_MIN_MODULE,
            align=Align.CENTER,
            middle=True,
        )
    )
    text = Stack(text_area)
    lines = [
        ("sample statement", SAMPLE_STATEMENT, True),
        ("description", label.description, False),
        *([("trial", f"TRIAL {label.trial_register}", True)] if label.trial_register else []),
    ]
    block = builder.add(
        fit_identifier(label.unit.text, text.take(2.2 * LINE_HEIGHT), measure, max_size=2.2, min_size=1.4)
    )
    text.skip(0.3)
    block = builder.add(
        fit_identifier(
            label.coi.eye_readable_body,
            text.take(1.8 * LINE_HEIGHT),
            measure,
            max_size=1.8,
            min_size=1.2,
            check=label.coi.check,
            caption="COI",
        )
    )
    text.skip(0.3)
    for field, value, bold in lines:
        block = builder.add(
            fit_text(
                value,
                text.remaining,
                measure,
                max_size=1.8,
                min_size=1.2,
                bold=bold,
                max_lines=2,
                field=field,
            )
        )
        text.skip(block.height + 0.2)


def stock_for(label: Label) -> Stock | None:
    """The stock a label is printed on when it is not its kind's default (None: the default)."""
    return TRIAL_BAG_4X4 if isinstance(label, BagLabel) and label.trial is not None else None
