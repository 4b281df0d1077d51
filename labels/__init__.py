"""Bag, shipment, wristband and asset labels as PNG, PDF and ZPL that every scanner reads back.

``from labels import render_label`` is the API; importing this package stays cheap (Pillow and
reportlab load on first use), so the CLI can register its subcommands without them.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labels.api import render_label

__all__ = ["render_label"]


def __getattr__(name: str) -> object:
    if name == "render_label":
        from labels.api import render_label

        return render_label
    raise AttributeError(f"module 'labels' has no attribute {name!r}")
