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

from celltrail_shared.identifiers import Giai, Gln, Sscc, gs1_raw, parse_gs1


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


_START_C: Final = 105
_CODE_C: Final = 99


class _Code128(Code128):  # type: ignore[misc]
    """python-barcode's encoder, without its start-code shortcut where it loses data.

    It starts in code set C and folds a switch right after the start into the start code; but in code
    set C the value 99 is also the digit pair "99", so content beginning "99" lost those two digits
    (a hypothesis example found it). A switch to C while already in C never occurs, so after a C start
    the value 99 is always data.
    """

    def _try_to_optimize(self, encoded: list[int]) -> list[int]:
        if encoded[0] == _START_C and len(encoded) > 1 and encoded[1] == _CODE_C:
            return encoded
        result: list[int] = super()._try_to_optimize(encoded)
        return result


def _decode_codewords(codewords: tuple[int, ...]) -> str:
    """The text a reader returns for Code 128 ``codewords`` (start code first, no check or stop)."""
    code_set = {103: "A", 104: "B", 105: "C"}[codewords[0]]
    out = []
    for value in codewords[1:]:
        if code_set == "C" and value < 100:
            out.append(f"{value:02d}")
        elif value in (99, 100, 101):
            code_set = {99: "C", 100: "B", 101: "A"}[value]
        elif code_set == "A":
            out.append(chr(value + 32) if value < 64 else chr(value - 64))
        else:
            out.append(chr(value + 32))
    return "".join(out)


def code128(content: str) -> Symbol:
    """Code 128 carrying ``content`` exactly (e.g. ``&/CHG123426A1B2C3`` or ``=G12341765432170``)."""
    if not content or not content.isascii() or not content.isprintable():
        raise ValueError(f"Code 128 content must be printable ASCII, got {content!r}")
    encoder = _Code128(content)
    # A label must never carry other data than it was asked to: check the encoder's codewords.
    if _decode_codewords(tuple(encoder._build())) != content:
        raise ValueError(f"Code 128 encoder produced other data than {content!r}")
    encoder = _Code128(content)
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
