"""The one typeface used on every label, and how wide text set in it is.

Bitstream Vera ships inside reportlab, so PNG (Pillow) and PDF (reportlab) draw with the same font and
the same metrics, with nothing to download and no dependence on fonts installed on the machine. It has
the glyphs labels need (°, ≤, −, …).
"""

from functools import cache, lru_cache
from pathlib import Path
from typing import Final

import reportlab
from reportlab.pdfbase.ttfonts import TTFont

_FONT_DIR: Final = Path(reportlab.__file__).parent / "fonts"
_FILES: Final = {False: "Vera.ttf", True: "VeraBd.ttf"}
PDF_FONT_NAMES: Final = {False: "CelltrailVera", True: "CelltrailVeraBold"}

# Vera's ascent and descent as fractions of the em; a line box is their sum.
ASCENT: Final = 0.928
DESCENT: Final = 0.236
LINE_HEIGHT: Final = ASCENT + DESCENT


def font_path(bold: bool) -> Path:
    return _FONT_DIR / _FILES[bold]


@cache
def pdf_font(bold: bool) -> TTFont:
    return TTFont(PDF_FONT_NAMES[bold], str(font_path(bold)))


@lru_cache(maxsize=8192)
def text_width(text: str, size: float, bold: bool) -> float:
    """Advance width of ``text`` set at ``size`` (any unit; the result is in the same unit)."""
    return float(pdf_font(bold).stringWidth(text, size))
