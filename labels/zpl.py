"""ZPL II for Zebra-compatible printers, using the printer's own barcode commands (not a bitmap).

* Code 128: ``^BC`` in mode N with explicit start and code-set invocation codes reproduced from the
  codewords the layout measured, so the printed symbol has exactly the planned width.
* QR: ``^BQ`` model 2, error correction M, magnification = module size in dots.
* GS1 Data Matrix: ``^BX`` ECC 200 with the planned rows and columns; FNC1 written with the escape
  character ``#`` (which GS1 data can never contain).
* Text: scalable font 0 in a one-line ``^FB`` field block as wide as the planned text, so a printer
  font wider than planned can never spill onto a neighbour; ``^FH`` hex-escapes anything that is not
  plain ASCII, and ``^CI28`` makes the printer read UTF-8.
"""

from typing import Final

from celltrail_shared.identifiers import GS1_SEPARATOR
from labels.layout import Layout, PlacedBox, PlacedCode, PlacedText
from labels.stock import to_dots
from labels.symbologies import QR_ERROR_LEVEL, Symbol, Symbology

DATAMATRIX_ESCAPE: Final = "#"
HEX_ESCAPE: Final = "_"

# Code 128 start codewords and code-set changes -> ZPL invocation codes (mode N).
_START = {103: ">9", 104: ">:", 105: ">;"}
_SPECIAL = {98: ">4", 99: ">5", 100: ">6", 101: ">7", 102: ">8"}
# Characters printer fonts may lack, replaced by plain equivalents.
_TRANSLITERATE = str.maketrans({"≤": "<=", "≥": ">=", "−": "-", "–": "-", "—": "-", "…": "...", "×": "x"})


def code128_field_data(symbol: Symbol) -> str:
    """``^FD`` data for ``^BC`` mode N that makes the printer use the same code sets as ``symbol``."""
    if symbol.symbology is not Symbology.CODE128 or not symbol.codewords:
        raise ValueError("code128_field_data needs a Code 128 symbol with its codewords")
    start, *data = symbol.codewords
    code_set = {103: "A", 104: "B", 105: "C"}[start]
    parts = [_START[start]]
    for value in data:
        if value in _SPECIAL and not (code_set == "C" and value < 100):
            parts.append(_SPECIAL[value])
            code_set = {99: "C", 100: "B", 101: "A"}.get(value, code_set)
        elif code_set == "C":
            parts.append(f"{value:02d}")
        else:
            char = chr(value + 32)
            parts.append("><" if char == ">" else char)
    return "".join(parts)


def datamatrix_field_data(symbol: Symbol) -> str:
    """``^FD`` data for a GS1 ``^BX``: leading FNC1, FNC1 again where the reader returns GS."""
    fnc1 = DATAMATRIX_ESCAPE + "1"
    return fnc1 + symbol.content.replace(GS1_SEPARATOR, fnc1)


def escape_text(text: str) -> str:
    """Field data safe for ``^FH_``: ZPL control characters and non-ASCII bytes as _XX hex."""
    out = []
    for byte in text.translate(_TRANSLITERATE).encode("utf-8"):
        char = chr(byte)
        if byte < 0x20 or byte > 0x7E or char in "^~" + HEX_ESCAPE:
            out.append(f"{HEX_ESCAPE}{byte:02X}")
        else:
            out.append(char)
    return "".join(out)


def _code(code: PlacedCode) -> str:
    dpi = code.dpi
    origin = f"^FO{to_dots(code.x, dpi)},{to_dots(code.y, dpi)}"
    module = code.module_dots
    symbol = code.symbol
    match symbol.symbology:
        case Symbology.CODE128:
            height = to_dots(code.height, dpi)
            return f"{origin}^BY{module}^BCN,{height},N,N,N,N^FD{code128_field_data(symbol)}^FS"
        case Symbology.QR:
            return f"{origin}^BQN,2,{module},{QR_ERROR_LEVEL}^FD{QR_ERROR_LEVEL}A,{symbol.content}^FS"
        case Symbology.DATAMATRIX:
            return (
                f"{origin}^BXN,{module},200,{symbol.columns},{symbol.rows},,{DATAMATRIX_ESCAPE}"
                f"^FD{datamatrix_field_data(symbol)}^FS"
            )


def _box(box: PlacedBox, dpi: int) -> str:
    rect = box.rect
    width, height = max(1, to_dots(rect.w, dpi)), max(1, to_dots(rect.h, dpi))
    thickness = min(width, height) if box.filled else max(1, to_dots(box.stroke, dpi))
    return f"^FO{to_dots(rect.x, dpi)},{to_dots(rect.y, dpi)}^GB{width},{height},{thickness}^FS"


def _text(text: PlacedText, dpi: int) -> str:
    size = max(10, to_dots(text.size, dpi))
    block = to_dots(text.width, dpi) + 2
    return (
        f"^FO{to_dots(text.x, dpi)},{to_dots(text.y, dpi)}^A0N,{size},{size}"
        f"^FB{block},1,0,L,0^FH{HEX_ESCAPE}^FD{escape_text(text.text)}^FS"
    )


def render_zpl(layout: Layout, copies: int = 1) -> bytes:
    """One ZPL II label format (``^XA`` ... ``^XZ``), UTF-8 encoded."""
    dpi = layout.dpi
    commands = [
        "^XA",
        "^CI28",
        f"^PW{to_dots(layout.width, dpi)}",
        f"^LL{to_dots(layout.height, dpi)}",
        "^LH0,0",
    ]
    commands += [_code(code) for code in layout.codes]
    commands += [_box(box, dpi) for box in layout.boxes]
    commands += [_text(text, dpi) for text in layout.texts]
    commands += [f"^PQ{copies}", "^XZ"]
    return ("\n".join(commands) + "\n").encode("ascii")
