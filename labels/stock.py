"""Label stock sizes and the printer resolutions labels are rendered for.

Sizes are the exact inch sizes of common thermal-transfer stock, so that a whole number of dots fits at
203, 300 and 600 dpi (4 in = 812 dots at 203 dpi).
"""

from typing import Final

import msgspec

MM_PER_INCH: Final = 25.4
SUPPORTED_DPI: Final = (203, 300, 600)


class Stock(msgspec.Struct, frozen=True):
    name: str
    width_mm: float
    height_mm: float
    description: str


BAG_4X2: Final = Stock("bag-4x2", 101.6, 50.8, "4 x 2 in bag label")
BAG_4X3: Final = Stock("bag-4x3", 101.6, 76.2, "4 x 3 in bag label")
SHIPMENT_4X6: Final = Stock("shipment-4x6", 101.6, 152.4, "4 x 6 in shipping label")
WRISTBAND_1X10: Final = Stock("wristband-1x10", 254.0, 25.4, "1 x 10 in patient wristband strip")
ASSET_2X1: Final = Stock("asset-2x1", 50.8, 25.4, "2 x 1 in asset tag")
ASSET_3X1: Final = Stock("asset-3x1", 76.2, 25.4, "3 x 1 in asset tag")

STOCKS: Final = {
    stock.name: stock for stock in (BAG_4X2, BAG_4X3, SHIPMENT_4X6, WRISTBAND_1X10, ASSET_2X1, ASSET_3X1)
}


def get_stock(name: str) -> Stock:
    try:
        return STOCKS[name]
    except KeyError:
        raise ValueError(f"unknown label stock {name!r}; choose one of {', '.join(STOCKS)}") from None


def check_dpi(dpi: int) -> int:
    if dpi not in SUPPORTED_DPI:
        raise ValueError(f"dpi must be one of {', '.join(map(str, SUPPORTED_DPI))}, got {dpi}")
    return dpi


def to_dots(mm: float, dpi: int) -> int:
    return round(mm * dpi / MM_PER_INCH)


def to_mm(dots: int, dpi: int) -> float:
    return dots * MM_PER_INCH / dpi
