"""Pure layout geometry: where codes, text and boxes go on a label, in millimetres from the top left.

Rules the engine keeps, so that every renderer can trust a layout:

* a code is never cropped: its module size is a whole number of device dots, chosen as large as the
  area allows down to a minimum, and its quiet zones lie inside the area; if it cannot fit,
  :class:`LayoutError` says so instead of printing an unreadable code;
* text that does not fit first shrinks, then wraps, down to a legible minimum size; text that still does
  not fit raises :class:`LayoutError` naming it. Nothing is ever cut: a label that silently dropped
  "...nitrogen at o..." from a handling instruction would be read as complete;
* nothing is placed outside the area it was given.
"""

import math
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Final

import msgspec

from labels.fonts import ASCENT, LINE_HEIGHT
from labels.stock import to_mm
from labels.symbologies import Symbol

EPSILON: Final = 1e-6

# Width of text in mm: (text, size in mm, bold) -> mm.
Measure = Callable[[str, float, bool], float]


class LayoutError(ValueError):
    """The content does not fit the label stock (a ``ValueError``: the CLI exits 2, the API answers 422)."""


class Align(StrEnum):
    LEFT = "left"
    CENTER = "center"


class Rect(msgspec.Struct, frozen=True):
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    def inset(self, dx: float, dy: float | None = None) -> "Rect":
        dy = dx if dy is None else dy
        return Rect(self.x + dx, self.y + dy, max(0.0, self.w - 2 * dx), max(0.0, self.h - 2 * dy))

    def split_left(self, width: float, gap: float = 0.0) -> tuple["Rect", "Rect"]:
        """(left part of ``width``, the rest after ``gap``)."""
        width = min(width, self.w)
        rest_x = min(self.right, self.x + width + gap)
        return Rect(self.x, self.y, width, self.h), Rect(rest_x, self.y, self.right - rest_x, self.h)

    def split_right(self, width: float, gap: float = 0.0) -> tuple["Rect", "Rect"]:
        """(the rest before ``gap``, right part of ``width``)."""
        width = min(width, self.w)
        rest_w = max(0.0, self.w - width - gap)
        return Rect(self.x, self.y, rest_w, self.h), Rect(self.right - width, self.y, width, self.h)

    def contains(self, other: "Rect") -> bool:
        return (
            other.x >= self.x - EPSILON
            and other.y >= self.y - EPSILON
            and other.right <= self.right + EPSILON
            and other.bottom <= self.bottom + EPSILON
        )

    def overlaps(self, other: "Rect") -> bool:
        return (
            self.x < other.right - EPSILON
            and other.x < self.right - EPSILON
            and self.y < other.bottom - EPSILON
            and other.y < self.bottom - EPSILON
        )


class PlacedCode(msgspec.Struct, frozen=True):
    """A symbol at (x, y), the top left of its first module; quiet zones lie around it."""

    symbol: Symbol
    x: float
    y: float
    module_dots: int
    dpi: int
    height: float  # bar height for a linear symbol, rows x module for a matrix symbol

    @property
    def module(self) -> float:
        return to_mm(self.module_dots, self.dpi)

    @property
    def width(self) -> float:
        return self.symbol.columns * self.module

    @property
    def quiet(self) -> float:
        return self.symbol.quiet_zone * self.module

    @property
    def bounds(self) -> Rect:
        return Rect(self.x, self.y, self.width, self.height)

    @property
    def outer(self) -> Rect:
        """The symbol with its quiet zones (horizontal only for a linear symbol)."""
        vertical = 0.0 if self.symbol.is_linear else self.quiet
        return Rect(
            self.x - self.quiet, self.y - vertical, self.width + 2 * self.quiet, self.height + 2 * vertical
        )


class PlacedText(msgspec.Struct, frozen=True):
    """One line of text; (x, y) is the top of its line box, ``size`` the em size in mm."""

    text: str
    x: float
    y: float
    size: float
    bold: bool
    width: float  # measured advance width
    box_width: float  # width of the area the line was fitted to

    @property
    def bounds(self) -> Rect:
        return Rect(self.x, self.y, self.width, self.size * LINE_HEIGHT)


class PlacedBox(msgspec.Struct, frozen=True):
    """A stroked rectangle (a boxed check character, a frame, a rule)."""

    rect: Rect
    stroke: float
    filled: bool = False


class Layout(msgspec.Struct, frozen=True):
    width: float
    height: float
    dpi: int
    codes: tuple[PlacedCode, ...]
    texts: tuple[PlacedText, ...]
    boxes: tuple[PlacedBox, ...]


class Block(msgspec.Struct, frozen=True):
    """What a placement helper produced and how much height it used."""

    height: float
    texts: tuple[PlacedText, ...] = ()
    boxes: tuple[PlacedBox, ...] = ()


class Builder:
    """Collects placements for one label."""

    def __init__(self, width: float, height: float, dpi: int) -> None:
        self.width = width
        self.height = height
        self.dpi = dpi
        self._codes: list[PlacedCode] = []
        self._texts: list[PlacedText] = []
        self._boxes: list[PlacedBox] = []

    def add_code(self, code: PlacedCode) -> PlacedCode:
        self._codes.append(code)
        return code

    def add(self, block: Block) -> Block:
        self._texts.extend(block.texts)
        self._boxes.extend(block.boxes)
        return block

    def add_box(self, box: PlacedBox) -> None:
        self._boxes.append(box)

    def merge(self, other: "Builder") -> None:
        """Take over everything ``other`` placed (a part laid out on trial)."""
        self._codes.extend(other._codes)
        self._texts.extend(other._texts)
        self._boxes.extend(other._boxes)

    def build(self) -> Layout:
        return Layout(
            self.width, self.height, self.dpi, tuple(self._codes), tuple(self._texts), tuple(self._boxes)
        )


class Stack:
    """Hands out bands of a column from the top (or bottom); refuses to hand out more than there is."""

    def __init__(self, area: Rect) -> None:
        self.area = area
        self.y = area.y
        self.bottom = area.bottom

    @property
    def remaining(self) -> Rect:
        return Rect(self.area.x, self.y, self.area.w, max(0.0, self.bottom - self.y))

    def take(self, height: float) -> Rect:
        if height > self.remaining.h + EPSILON:
            raise LayoutError(f"needs {height:.1f} mm more height but only {self.remaining.h:.1f} mm is left")
        band = Rect(self.area.x, self.y, self.area.w, height)
        self.y += height
        return band

    def skip(self, height: float) -> None:
        self.y = min(self.bottom, self.y + height)

    def advance_to(self, y: float) -> None:
        """Continue below ``y`` (e.g. the bottom of a code's quiet zone)."""
        self.y = min(self.bottom, max(self.y, y))

    def take_bottom(self, height: float) -> Rect:
        """A band at the bottom of what is left, for content stacked from the bottom up."""
        if height > self.remaining.h + EPSILON:
            raise LayoutError(f"needs {height:.1f} mm more height but only {self.remaining.h:.1f} mm is left")
        self.bottom -= height
        return Rect(self.area.x, self.bottom, self.area.w, height)


# --------------------------------------------------------------------------------------- codes


def place_code(
    symbol: Symbol,
    area: Rect,
    dpi: int,
    *,
    module: float,
    min_module: float,
    max_module_dots: int | None = None,
    bar_height: float = 0.0,
    min_bar_height: float = 0.0,
    align: Align = Align.LEFT,
    middle: bool = False,
) -> PlacedCode:
    """Place ``symbol`` with its quiet zones inside ``area``, module as close to ``module`` mm as fits.

    A linear symbol gets ``bar_height`` (or less, down to ``min_bar_height``, if the area is lower).
    ``middle`` centres a matrix symbol vertically; otherwise it sits at the top of the area.
    """
    per_mm = dpi / 25.4
    largest = max(1, round(module * per_mm))
    if max_module_dots is not None:
        largest = min(largest, max_module_dots)
    smallest = max(1, math.ceil(min_module * per_mm - 0.05))
    quiet = symbol.quiet_zone
    for dots in range(largest, smallest - 1, -1):
        size = to_mm(dots, dpi)
        outer_w = (symbol.columns + 2 * quiet) * size
        outer_h = min_bar_height if symbol.is_linear else (symbol.rows + 2 * quiet) * size
        if outer_w <= area.w + EPSILON and outer_h <= area.h + EPSILON:
            break
    else:
        need = (symbol.columns + 2 * quiet) * to_mm(smallest, dpi)
        raise LayoutError(
            f"{symbol.symbology} code {symbol.content!r} needs {need:.1f} mm with its quiet zones "
            f"but the area is {area.w:.1f} x {area.h:.1f} mm: use a larger label stock"
        )
    size = to_mm(dots, dpi)
    height = min(bar_height, area.h) if symbol.is_linear else symbol.rows * size
    outer_w = (symbol.columns + 2 * quiet) * size
    left = area.x if align is Align.LEFT else area.x + (area.w - outer_w) / 2
    top = area.y
    if not symbol.is_linear:
        outer_h = (symbol.rows + 2 * quiet) * size
        top += (area.h - outer_h) / 2 + quiet * size if middle else quiet * size
    return PlacedCode(symbol=symbol, x=left + quiet * size, y=top, module_dots=dots, dpi=dpi, height=height)


# --------------------------------------------------------------------------------------- text


def normalise(text: str) -> str:
    """One line of printable text: control characters dropped, runs of white space made one space."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _longest_fitting_prefix(word: str, width: float, size: float, bold: bool, measure: Measure) -> int:
    cut = len(word)
    while cut > 1 and measure(word[:cut], size, bold) > width:
        cut -= 1
    return cut


def wrap(text: str, width: float, size: float, bold: bool, measure: Measure) -> list[str]:
    """Greedy word wrap; a word wider than the line is broken between characters."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if measure(candidate, size, bold) <= width + EPSILON:
            current = candidate
            continue
        if current:
            lines.append(current)
        while measure(word, size, bold) > width + EPSILON and len(word) > 1:
            cut = _longest_fitting_prefix(word, width, size, bold, measure)
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def _sizes(max_size: float, min_size: float) -> Iterator[float]:
    size = max_size
    while size > min_size + EPSILON:
        yield size
        size *= 0.92
    yield min_size


def _lines_block(
    lines: list[str], area: Rect, size: float, bold: bool, align: Align, measure: Measure
) -> Block:
    placed = []
    for index, line in enumerate(lines):
        width = measure(line, size, bold)
        x = area.x if align is Align.LEFT else area.x + (area.w - width) / 2
        y = area.y + index * size * LINE_HEIGHT
        placed.append(PlacedText(line, x, y, size, bold, width, area.w))
    return Block(height=len(lines) * size * LINE_HEIGHT, texts=tuple(placed))


def fit_text(
    text: str,
    area: Rect,
    measure: Measure,
    *,
    max_size: float,
    min_size: float,
    bold: bool = False,
    max_lines: int = 1,
    align: Align = Align.LEFT,
    field: str = "text",
) -> Block:
    """Fit ``text`` in ``area``: shrink a little on one line, then wrap, down to ``min_size``.

    Raises :class:`LayoutError` when even ``max_lines`` lines at ``min_size`` cannot hold all of it:
    text is never cut, since a shortened instruction or product name reads as if it were complete.
    ``field`` names the text in that error.
    """
    text = normalise(text)
    if not text:
        return Block(height=0.0)
    for size in _sizes(max_size, max(min_size, max_size * 0.8)):
        if size * LINE_HEIGHT <= area.h + EPSILON and measure(text, size, bold) <= area.w + EPSILON:
            return _lines_block([text], area, size, bold, align, measure)
    for size in _sizes(max_size, min_size):
        lines = wrap(text, area.w, size, bold, measure)
        if len(lines) <= max_lines and len(lines) * size * LINE_HEIGHT <= area.h + EPSILON:
            return _lines_block(lines, area, size, bold, align, measure)
    room = min(max_lines, math.floor((area.h + EPSILON) / (min_size * LINE_HEIGHT)))
    needed = len(wrap(text, area.w, min_size, bold, measure))
    count = f"{needed} line" if needed == 1 else f"{needed} lines"
    # The error quotes only the start of a long text; the label itself never shows a shortened one.
    shown = text if len(text) <= 40 else text[:37] + "..."
    raise LayoutError(
        f"{field} {shown!r} ({len(text)} characters) does not fit: it needs {count} at the smallest "
        f"legible size ({min_size:.1f} mm) and there is room for {max(room, 0)} "
        f"({area.w:.1f} x {area.h:.1f} mm); shorten it or use a larger label stock"
    )


def fit_identifier(
    body: str,
    area: Rect,
    measure: Measure,
    *,
    max_size: float,
    min_size: float,
    check: str | None = None,
    caption: str | None = None,
    align: Align = Align.LEFT,
) -> Block:
    """One line: optional bold caption, the identifier, and its check character boxed.

    Identifiers are never wrapped or cut: if the line does not fit at ``min_size`` this raises.
    """
    for size in _sizes(max_size, min_size):
        block = _identifier_line(body, check, caption, area, size, measure, align)
        if block is not None:
            return block
    raise LayoutError(f"identifier {body!r} does not fit on one line in {area.w:.1f} mm: use a larger stock")


def _identifier_line(
    body: str, check: str | None, caption: str | None, area: Rect, size: float, measure: Measure, align: Align
) -> Block | None:
    line_height = size * LINE_HEIGHT
    stroke = max(0.15, size * 0.06)
    pad = size * 0.15
    gap = size * 0.35
    caption_w = measure(caption, size * 0.8, True) + gap if caption else 0.0
    body_w = measure(body, size, False)
    check_w = measure(check, size, True) if check else 0.0
    box_w = check_w + 2 * pad + 2 * stroke if check else 0.0
    box_h = line_height + 2 * stroke
    total = caption_w + body_w + (gap + box_w if check else 0.0)
    if total > area.w + EPSILON or box_h > area.h + EPSILON:
        return None
    x = area.x if align is Align.LEFT else area.x + (area.w - total) / 2
    text_y = area.y + stroke
    texts: list[PlacedText] = []
    if caption:
        caption_size = size * 0.8
        # Sit the smaller caption on the same baseline as the identifier.
        caption_y = text_y + (size - caption_size) * ASCENT
        texts.append(PlacedText(caption, x, caption_y, caption_size, True, caption_w - gap, area.w))
    texts.append(PlacedText(body, x + caption_w, text_y, size, False, body_w, area.w - caption_w))
    boxes: tuple[PlacedBox, ...] = ()
    if check:
        box_x = x + caption_w + body_w + gap
        boxes = (PlacedBox(Rect(box_x, area.y, box_w, box_h), stroke),)
        texts.append(PlacedText(check, box_x + stroke + pad, text_y, size, True, check_w, box_w))
    return Block(height=box_h, texts=tuple(texts), boxes=boxes)


def fit_marks(marks: list[str], area: Rect, measure: Measure, *, max_size: float, min_size: float) -> Block:
    """Handling marks as boxed words, flowed left to right and wrapped onto as many rows as fit."""
    if not marks:
        return Block(height=0.0)
    for size in _sizes(max_size, min_size):
        block = _flow_marks(marks, area, size, measure)
        if block is not None:
            return block
    raise LayoutError(f"handling marks do not fit in {area.w:.1f} x {area.h:.1f} mm")


def _flow_marks(marks: list[str], area: Rect, size: float, measure: Measure) -> Block | None:
    stroke = max(0.25, size * 0.08)
    pad = size * 0.35
    box_h = size * LINE_HEIGHT + 2 * (pad + stroke)
    gap = size * 0.5
    x, y = area.x, area.y
    texts: list[PlacedText] = []
    boxes: list[PlacedBox] = []
    for mark in marks:
        text_w = measure(mark, size, True)
        box_w = text_w + 2 * (pad + stroke)
        if box_w > area.w + EPSILON:
            return None
        if x + box_w > area.right + EPSILON:
            x, y = area.x, y + box_h + gap
        if y + box_h > area.bottom + EPSILON:
            return None
        boxes.append(PlacedBox(Rect(x, y, box_w, box_h), stroke))
        texts.append(PlacedText(mark, x + stroke + pad, y + stroke + pad, size, True, text_w, box_w))
        x += box_w + gap
    return Block(height=y + box_h - area.y, texts=tuple(texts), boxes=tuple(boxes))


def rule(area: Rect, stroke: float = 0.3) -> PlacedBox:
    """A horizontal line across ``area`` at its top."""
    return PlacedBox(Rect(area.x, area.y, area.w, stroke), stroke, filled=True)
