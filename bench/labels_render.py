"""Label rendering throughput: how many labels per second each output format takes on one core.

Each iteration renders a different bag label (new COI, unit and DIN) from identifiers to bytes: layout,
symbol encoding and the output writer. A round-trip figure decodes a rendered PNG with the scanner's
decoders and parses every code, which is what a receipt check at the pharmacy costs per label.

``run(smoke)`` returns one dict per figure; ``python -m bench.labels_render [--smoke]`` prints them.
"""

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from io import BytesIO

from celltrail_shared.identifiers import (
    Coi,
    Din,
    LoggerId,
    ShipmentId,
    Sscc,
    UnitId,
    UnitKind,
    parse_identifier,
)
from labels.api import render_label
from labels.model import BagLabel, ShipmentLabel, TemperatureProfile
from labels.templates import layout_label

EXPIRY = datetime(2026, 3, 14, 23, 59, tzinfo=UTC)


def bag_label(index: int) -> BagLabel:
    coi = Coi("G1234", "26", f"{index % 1_000_000:06d}")
    return BagLabel(
        coi=coi,
        unit=UnitId(coi, UnitKind.FINAL_PRODUCT, 1 + index % 99),
        product="Autologous anti-CD19 CAR-T cells, suspension for infusion",
        expiry=EXPIRY,
        din=Din.build("G1234", "26", f"{index % 1_000_000:06d}"),
    )


def shipment_label(index: int) -> ShipmentLabel:
    return ShipmentLabel(
        shipment=ShipmentId(2026, 1 + index % 999_999),
        from_site="Manufacturing site, Building 4",
        to_site="City Hospital Pharmacy, Cell Therapy Unit",
        temperature_profile=TemperatureProfile.CRYO,
        sscc=Sscc.build("0614141", f"{index % 1_000_000_000:09d}", 1),
        logger=LoggerId(f"T{index:06d}"),
    )


def _rate(work: Callable[[int], object], iterations: int) -> float:
    work(0)  # warm caches (fonts, imports) outside the timing
    start = time.perf_counter()
    for index in range(1, iterations + 1):
        work(index)
    return iterations / (time.perf_counter() - start)


def _decode_and_parse(png: bytes) -> int:
    import numpy as np
    import zxingcpp
    from PIL import Image
    from pyzbar import pyzbar

    image = np.asarray(Image.open(BytesIO(png)).convert("L"))
    contents = [s.data.decode() for s in pyzbar.decode(image)]
    contents += [
        b.symbology_identifier + b.text
        for b in zxingcpp.read_barcodes(
            image,
            formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.DataMatrix),
            text_mode=zxingcpp.TextMode.Plain,
        )
    ]
    return len([parse_identifier(content) for content in contents])


def run(smoke: bool) -> list[dict[str, object]]:
    iterations = 3 if smoke else 200
    conditions = (
        f"{iterations} labels, one process, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.machine()}"
    )
    cases: list[tuple[str, Callable[[int], object]]] = [
        ("labels laid out/s (bag, 300 dpi, no output)", lambda i: layout_label(bag_label(i), 300)),
        ("labels rendered/s (bag, png 203 dpi)", lambda i: render_label(bag_label(i), "png", 203)),
        ("labels rendered/s (bag, png 300 dpi)", lambda i: render_label(bag_label(i), "png", 300)),
        ("labels rendered/s (bag, png 600 dpi)", lambda i: render_label(bag_label(i), "png", 600)),
        ("labels rendered/s (bag, pdf)", lambda i: render_label(bag_label(i), "pdf", 300)),
        ("labels rendered/s (bag, zpl 203 dpi)", lambda i: render_label(bag_label(i), "zpl", 203)),
        (
            "labels rendered/s (shipment 4x6, png 300 dpi)",
            lambda i: render_label(shipment_label(i), "png", 300),
        ),
        (
            "labels rendered/s (shipment 4x6, zpl 203 dpi)",
            lambda i: render_label(shipment_label(i), "zpl", 203),
        ),
    ]
    figures: list[dict[str, object]] = [
        {
            "figure": name,
            "unit": "labels/s",
            "value": round(_rate(work, iterations), 1),
            "conditions": conditions,
        }
        for name, work in cases
    ]
    pngs = [render_label(bag_label(i), "png", 300) for i in range(min(iterations, 50))]
    decoded = _rate(lambda i: _decode_and_parse(pngs[i % len(pngs)]), min(iterations, 50))
    figures.append(
        {
            "figure": "bag png 300 dpi decoded and parsed/s (pyzbar + zxing-cpp)",
            "unit": "labels/s",
            "value": round(decoded, 1),
            "conditions": f"{min(iterations, 50)} labels, 3 codes each, {conditions.split(', ', 1)[1]}",
        }
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="a few iterations: checks it runs, not how fast")
    figures = run(parser.parse_args().smoke)
    for f in figures:
        print(f"{f['figure']:<60} {f['value']:>10} {f['unit']:<9} {f['conditions']}")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
