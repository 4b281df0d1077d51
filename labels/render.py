"""Draw a layout as a PNG (Pillow) or a PDF (reportlab, one label per page, page = the stock size)."""

from collections.abc import Iterator, Sequence
from functools import lru_cache
from io import BytesIO
from typing import Final

from PIL import Image, ImageDraw, ImageFont
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from labels.fonts import ASCENT, PDF_FONT_NAMES, font_path, pdf_font
from labels.layout import Layout, PlacedCode
from labels.stock import MM_PER_INCH, to_dots

mm: Final = 72 / MM_PER_INCH  # PDF points per millimetre


def dark_runs(row: str) -> Iterator[tuple[int, int]]:
    """(first module, number of modules) of each run of dark modules in a row."""
    start = -1
    for index, module in enumerate(row):
        if module == "1" and start < 0:
            start = index
        elif module != "1" and start >= 0:
            yield start, index - start
            start = -1
    if start >= 0:
        yield start, len(row) - start


# --------------------------------------------------------------------------------------- PNG


@lru_cache(maxsize=256)
def _pil_font(bold: bool, size_px: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(bold)), size_px)


def _draw_code(draw: ImageDraw.ImageDraw, code: PlacedCode) -> None:
    dpi = code.dpi
    x0, y0, module = to_dots(code.x, dpi), to_dots(code.y, dpi), code.module_dots
    row_height = to_dots(code.height, dpi) if code.symbol.is_linear else module
    for row_index, row in enumerate(code.symbol.modules):
        top = y0 + row_index * row_height
        for start, length in dark_runs(row):
            left = x0 + start * module
            draw.rectangle((left, top, left + length * module - 1, top + row_height - 1), fill=0)


def render_png(layout: Layout) -> bytes:
    """8-bit grey PNG at the layout's dpi, with the dpi recorded in the file."""
    dpi = layout.dpi
    image = Image.new("L", (to_dots(layout.width, dpi), to_dots(layout.height, dpi)), 255)
    draw = ImageDraw.Draw(image)
    for code in layout.codes:
        _draw_code(draw, code)
    for box in layout.boxes:
        rect = box.rect
        corners = (
            to_dots(rect.x, dpi),
            to_dots(rect.y, dpi),
            to_dots(rect.right, dpi) - 1,
            to_dots(rect.bottom, dpi) - 1,
        )
        if box.filled:
            draw.rectangle(corners, fill=0)
        else:
            draw.rectangle(corners, outline=0, width=max(1, to_dots(box.stroke, dpi)))
    for text in layout.texts:
        font = _pil_font(text.bold, text.size * dpi / MM_PER_INCH)
        draw.text((to_dots(text.x, dpi), to_dots(text.y, dpi)), text.text, font=font, fill=0, anchor="la")
    out = BytesIO()
    image.save(out, "PNG", dpi=(dpi, dpi))
    return out.getvalue()


# --------------------------------------------------------------------------------------- PDF


def _register_pdf_fonts() -> None:
    registered = set(pdfmetrics.getRegisteredFontNames())
    for bold in (False, True):
        if PDF_FONT_NAMES[bold] not in registered:
            pdfmetrics.registerFont(pdf_font(bold))


def _draw_pdf_page(canvas: Canvas, layout: Layout) -> None:
    height = layout.height

    def bottom_up(y: float, h: float) -> float:
        return (height - y - h) * mm

    canvas.setPageSize((layout.width * mm, layout.height * mm))
    canvas.setFillGray(0)
    canvas.setStrokeGray(0)
    for code in layout.codes:
        module = code.module
        row_height = code.height if code.symbol.is_linear else module
        for row_index, row in enumerate(code.symbol.modules):
            top = code.y + row_index * row_height
            for start, length in dark_runs(row):
                x = (code.x + start * module) * mm
                canvas.rect(
                    x, bottom_up(top, row_height), length * module * mm, row_height * mm, stroke=0, fill=1
                )
    for box in layout.boxes:
        rect = box.rect
        if box.filled:
            canvas.rect(rect.x * mm, bottom_up(rect.y, rect.h), rect.w * mm, rect.h * mm, stroke=0, fill=1)
        else:
            # The stroke lies inside the rectangle, as in the PNG.
            half = box.stroke / 2
            canvas.setLineWidth(box.stroke * mm)
            canvas.rect(
                (rect.x + half) * mm,
                bottom_up(rect.y + half, rect.h - box.stroke),
                (rect.w - box.stroke) * mm,
                (rect.h - box.stroke) * mm,
                stroke=1,
                fill=0,
            )
    for text in layout.texts:
        canvas.setFont(PDF_FONT_NAMES[text.bold], text.size * mm)
        canvas.drawString(text.x * mm, (height - text.y - text.size * ASCENT) * mm, text.text)
    canvas.showPage()


def render_pdf(layouts: Sequence[Layout]) -> bytes:
    """A PDF with one page per layout; each page is exactly the label's size."""
    if not layouts:
        raise ValueError("a PDF needs at least one label")
    _register_pdf_fonts()
    out = BytesIO()
    # invariant: no timestamps or random ids, so the same label gives the same bytes.
    canvas = Canvas(out, pagesize=(layouts[0].width * mm, layouts[0].height * mm), invariant=True)
    canvas.setTitle("Celltrail label")
    for layout in layouts:
        _draw_pdf_page(canvas, layout)
    canvas.save()
    return out.getvalue()
