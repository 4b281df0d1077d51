"""Render a label to bytes: the one call the CLI and the HTTP API use."""

from typing import Final, Literal, get_args

from labels.layout import Layout
from labels.model import Label
from labels.render import render_pdf, render_png
from labels.stock import Stock
from labels.templates import layout_label
from labels.zpl import render_zpl

LabelFormat = Literal["png", "pdf", "zpl"]
FORMATS: Final[tuple[str, ...]] = get_args(LabelFormat)
MEDIA_TYPES: Final = {"png": "image/png", "pdf": "application/pdf", "zpl": "application/x-zpl"}
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


def render_label(label: Label, fmt: str, dpi: int = DEFAULT_DPI, stock: Stock | None = None) -> bytes:
    """``label`` as PNG, PDF or ZPL bytes for a ``dpi`` printer (203, 300 or 600) on ``stock``.

    Raises ``ValueError`` (including :class:`labels.layout.LayoutError`) for an unknown format or dpi,
    or content that does not fit the stock.
    """
    return render_layout(layout_label(label, dpi, stock), fmt)
