"""Small SVG charts for the KPI page, drawn on the server like the shipment chart: no script, readable
with the page's own fonts, and each with a title and a description for screen readers."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 640
ROW = 26
LEFT = 230


def _frame(title: str, height: int, body: str, summary: str, width: int = WIDTH) -> str:
    return (
        f'<svg class="kpi-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(summary)}</desc>{body}</svg>"
    )


def bar_chart(title: str, rows: Sequence[tuple[str, float | None]], maximum: float | None = None) -> str:
    """Horizontal bars, one per row; a row without a value says so."""
    if not rows:
        return f'<p class="muted">{escape(title)}: nothing to show yet.</p>'
    top = maximum or max((v for _, v in rows if v is not None), default=1.0) or 1.0
    # Room for the longest label, so that none is cut at the left edge.
    left = max(LEFT, min(480, 16 + 8 * max(len(label) for label, _ in rows)))
    width = max(WIDTH, left + 420)
    span = width - left - 60
    parts = []
    for i, (label, value) in enumerate(rows):
        y = 8 + i * ROW
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" class="kpi-label">{escape(label)}</text>'
        )
        if value is None:
            parts.append(f'<text x="{left}" y="{y + 15}" class="kpi-none">no data</text>')
            continue
        w = max(1.0, span * value / top)
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{ROW - 8}" class="kpi-bar"/>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}" class="kpi-value">{value:.1f}</text>')
    summary = "; ".join(f"{label}: {'no data' if v is None else f'{v:.1f}'}" for label, v in rows)
    return _frame(title, 16 + len(rows) * ROW, "".join(parts), summary, width)


def spread_chart(title: str, rows: Sequence[tuple[str, float | None, float | None, float | None]]) -> str:
    """Per row a median mark on a min-max range line."""
    if not rows:
        return f'<p class="muted">{escape(title)}: nothing to show yet.</p>'
    top = max((r[3] for r in rows if r[3] is not None), default=1.0) or 1.0
    span = WIDTH - LEFT - 60

    def x(v: float) -> float:
        return LEFT + span * v / top

    parts = []
    for i, (label, median, low, high) in enumerate(rows):
        y = 8 + i * ROW + 12
        parts.append(
            f'<text x="{LEFT - 8}" y="{y + 4}" text-anchor="end" class="kpi-label">{escape(label)}</text>'
        )
        if median is None or low is None or high is None:
            continue
        parts.append(f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y}" y2="{y}" class="kpi-range"/>')
        parts.append(f'<circle cx="{x(median):.1f}" cy="{y}" r="5" class="kpi-median"/>')
        parts.append(f'<text x="{x(high) + 8:.1f}" y="{y + 4}" class="kpi-value">{median:.1f}</text>')
    summary = "; ".join(f"{r[0]}: median {r[1]}, range {r[2]} to {r[3]}" for r in rows)
    return _frame(title, 16 + len(rows) * ROW, "".join(parts), summary)
