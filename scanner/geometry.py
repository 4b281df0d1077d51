"""Rectangles and polygons in frame pixel coordinates (x right, y down)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

Point = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Rect:
    """Half-open pixel rectangle ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        return self.width * self.height

    def union(self, other: Rect) -> Rect:
        return Rect(
            min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1)
        )

    def expand(self, margin: int, bounds: Rect) -> Rect:
        """Grown by ``margin`` pixels on every side, clipped to ``bounds``."""
        return Rect(
            max(bounds.x0, self.x0 - margin),
            max(bounds.y0, self.y0 - margin),
            min(bounds.x1, self.x1 + margin),
            min(bounds.y1, self.y1 + margin),
        )

    def contains(self, other: Rect) -> bool:
        return self.x0 <= other.x0 and self.y0 <= other.y0 and other.x1 <= self.x1 and other.y1 <= self.y1


def bounding_rect(points: Iterable[Point]) -> Rect:
    xs: list[int] = []
    ys: list[int] = []
    for x, y in points:
        xs.append(x)
        ys.append(y)
    if not xs:
        return Rect(0, 0, 0, 0)
    return Rect(min(xs), min(ys), max(xs) + 1, max(ys) + 1)


def union_all(rects: Iterable[Rect]) -> Rect | None:
    result: Rect | None = None
    for rect in rects:
        result = rect if result is None else result.union(rect)
    return result
