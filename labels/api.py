"""Render a label to bytes: the one call the CLI and the HTTP API use."""

from collections.abc import Collection
from typing import Final

from labels.formats import FORMATS, MEDIA_TYPES, LabelFormat
from labels.layout import Layout
from labels.model import Label, PatientField
from labels.render import render_pdf, render_png
from labels.stock import Stock
from labels.templates import layout_label
from labels.zpl import render_zpl

__all__ = ["FORMATS", "MEDIA_TYPES", "LabelFormat", "check_format", "render_label"]
DEFAULT_DPI: Final = 300


def check_format(fmt: str) -> LabelFormat:
    if fmt == "png":
        return "png"
    if fmt == "pdf":
        return "pdf"
    if fmt == "zpl":
        return "zpl"
    raise ValueError(f"label format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def render_layout(layout: Layout, fmt: str) -> bytes:
    match check_format(fmt):
        case "png":
            return render_png(layout)
        case "pdf":
            return render_pdf([layout])
        case "zpl":
            return render_zpl(layout)


def render_label(
    label: Label,
    fmt: str,
    dpi: int = DEFAULT_DPI,
    stock: Stock | None = None,
    *,
    wristband_requires: Collection[PatientField] = (),
) -> bytes:
    """``label`` as PNG, PDF or ZPL bytes for a ``dpi`` printer (203, 300 or 600) on ``stock``.

    ``wristband_requires``: the patient fields the site's policy puts on its wristbands.

    Raises ``ValueError`` for an unknown format or dpi, content that does not fit the stock even at the
    smallest legible size (:class:`labels.layout.LayoutError`; text is never cut) or a wristband missing
    a field the policy requires (:class:`labels.model.LabelPolicyError`).
    """
    return render_layout(layout_label(label, dpi, stock, wristband_requires=wristband_requires), fmt)
