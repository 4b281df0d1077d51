"""Barcode symbols as module matrices: Code 128, QR and GS1 Data Matrix.

Every symbol is reduced to rows of modules ('1' = dark) so that PNG, PDF and the layout engine all draw
the same thing at a whole number of device dots per module. Code 128 also keeps its codewords, from
which the ZPL writer reproduces exactly the same code-set choices (and so the same symbol width).
"""

from enum import StrEnum
from typing import Any, Final, cast

import msgspec
import segno
import zxingcpp
from barcode.codex import Code128

from backend.domain.identifiers import Giai, Gln, Sscc, gs1_raw, parse_gs1


class Symbology(StrEnum):
    CODE128 = "code128"
    QR = "qr"
    DATAMATRIX = "datamatrix"


# Minimum quiet zones in modules: Code 128 10X each side (ISO/IEC 15417), QR 4 modules (ISO/IEC 18004).
# Data Matrix needs 1 module (ISO/IEC 16022); 2 gives phone cameras a little more room.
QUIET_ZONE_MODULES: Final = {Symbology.CODE128: 10, Symbology.QR: 4, Symbology.DATAMATRIX: 2}

QR_ERROR_LEVEL: Final = "M"


class Symbol(msgspec.Struct, frozen=True):
    """A barcode ready to be placed: its modules, quiet zone and the content a reader returns."""

    symbology: Symbology
    content: str  # what a reader returns (GS1: raw element string, GS between elements)
    modules: tuple[str, ...]  # rows of '0'/'1'; a linear symbol has one row
    codewords: tuple[int, ...] = ()  # Code 128 only: start code and data codewords, no check or stop

    @property
    def columns(self) -> int:
        return len(self.modules[0])

    @property
    def rows(self) -> int:
        return len(self.modules)

    @property
    def is_linear(self) -> bool:
        return self.symbology is Symbology.CODE128

    @property
    def quiet_zone(self) -> int:
        return QUIET_ZONE_MODULES[self.symbology]


def code128(content: str) -> Symbol:
    """Code 128 carrying ``content`` exactly (e.g. ``&/CHG123426A1B2C3`` or ``=G12341765432170``)."""
    if not content or not content.isascii() or not content.isprintable():
        raise ValueError(f"Code 128 content must be printable ASCII, got {content!r}")
    encoder = Code128(content)
    return Symbol(
        symbology=Symbology.CODE128,
        content=content,
        modules=(encoder.build()[0],),
        codewords=tuple(encoder._build()),
    )


def qr(payload: str) -> Symbol:
    """QR code (model 2, error correction M) carrying ``payload``."""
    code = segno.make_qr(payload, error=QR_ERROR_LEVEL.lower(), boost_error=False)
    rows = tuple("".join("1" if dark else "0" for dark in row) for row in code.matrix)
    return Symbol(symbology=Symbology.QR, content=payload, modules=rows)


def gs1_datamatrix(element_string: str) -> Symbol:
    """Square GS1 Data Matrix (ECC 200, FNC1 first) for a bracketed element string like ``(00)...``."""
    elements = parse_gs1(element_string)
    barcode = zxingcpp.create_barcode(
        element_string, zxingcpp.BarcodeFormat.DataMatrix, gs1=True, force_square=True
    )
    image = barcode.to_image(scale=1, add_quiet_zones=False)
    height, width = image.shape[0], image.shape[1]
    # zxingcpp.Image supports the buffer protocol; its stub does not say so.
    pixels = bytes(memoryview(cast(Any, image)).cast("B"))
    rows = tuple(
        "".join("1" if pixels[r * width + c] < 128 else "0" for c in range(width)) for r in range(height)
    )
    content = gs1_raw(elements)
    return Symbol(symbology=Symbology.DATAMATRIX, content=content, modules=rows)


def gs1_key_datamatrix(key: Sscc | Giai | Gln) -> Symbol:
    return gs1_datamatrix(key.element_string)
