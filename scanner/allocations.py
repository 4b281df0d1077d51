"""Bedside verification of bags of allogeneic batches, offline.

A bag of an allogeneic (off-the-shelf) batch carries its batch's COI, not its patient's: the patient it
is for is the recipient its allocation names, and that lives on the backend. While online, a bedside
scanner fetches its site's *allocation book* (``GET /api/v1/allogeneic/bedside-book``): the batches with
a bag at the site and each live allocation to a recipient treated there, with whether it is *fixed* (the
bag thawed: the allocation can no longer be withdrawn). The book is kept beside the scanner's config, so
a scanner that starts offline has the last one it fetched.

The bedside never says MATCH wrongly: a bag of a batch matches a wristband offline only through a fixed
allocation to that wristband's patient, and a bag of a batch is a STOP offline only through a fixed
allocation to another patient (or a wristband naming the batch itself). Anything else about a bag of a
batch (not allocated when the book was fetched, allocated but not yet thawed: withdrawn or allocated
again since, perhaps) is "cannot verify offline — connect". A bag of no known batch is compared by COI
as an autologous bag.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

import httpx
import msgspec

from celltrail_shared.identifiers import Coi, UnitId
from scanner.verdict import Level, Verdict

BOOK_FILE: Final = "scanner-allocations.json"
BOOK_PATH: Final = "/api/v1/allogeneic/bedside-book"
FETCH_TIMEOUT: Final = httpx.Timeout(5.0, connect=2.0)


class BookAllocation(msgspec.Struct, frozen=True):
    recipient_coi: str
    fixed: bool


class AllocationBook(msgspec.Struct, frozen=True):
    site: str
    batches: list[str]
    allocations: dict[str, BookAllocation]
    as_of: str


def compare(book: AllocationBook | None, unit: UnitId, wristband: Coi) -> Verdict:
    """The bedside verdict for a confirmed bag and wristband, with what the scanner knows offline."""
    allocated = book.allocations.get(unit.text) if book is not None else None
    of_batch = allocated is not None or (book is not None and unit.coi.value in book.batches)
    if not of_batch:
        return _by_coi(book, unit, wristband)
    assert book is not None
    batch = unit.coi.eye_readable
    if unit.coi == wristband:
        return Verdict(
            Level.STOP,
            f"STOP: the wristband names allogeneic batch {batch} itself, not a patient",
            "do not infuse",
        )
    if allocated is not None and allocated.fixed:
        recipient = Coi.from_value(allocated.recipient_coi)
        if recipient == wristband:
            return Verdict(
                Level.OK,
                f"ALLOCATION MATCH: bag {unit.text} of batch {batch} is allocated to wristband "
                f"{wristband.eye_readable}",
            )
        return Verdict(
            Level.STOP,
            f"ALLOCATION MISMATCH: bag {unit.text} of batch {batch} is allocated to "
            f"{recipient.eye_readable}, wristband is {wristband.eye_readable}",
            "do not infuse",
        )
    known = f"allocated to {allocated.recipient_coi}" if allocated else "allocated to nobody"
    return Verdict(
        Level.WAIT,
        f"CANNOT VERIFY OFFLINE — connect: bag {unit.text} is of allogeneic batch {batch}",
        f"its allocation ({known} as of {book.as_of}) may have changed since; do not infuse until the "
        "scanner is online again",
    )


def _by_coi(book: AllocationBook | None, unit: UnitId, wristband: Coi) -> Verdict:
    if unit.coi == wristband:
        return Verdict(Level.OK, f"COI MATCH: bag {unit.text} belongs to wristband {wristband.eye_readable}")
    unknown = (
        "; this scanner has no allocation book: if the bag is of an allogeneic batch, connect to verify it"
        if book is None
        else ""
    )
    return Verdict(
        Level.STOP,
        f"COI MISMATCH: bag {unit.text} is for {unit.coi.eye_readable}, "
        f"wristband is {wristband.eye_readable}",
        "do not infuse" + unknown,
    )


def fetch(
    base_url: str, token: str, site: str, transport: httpx.BaseTransport | None = None
) -> AllocationBook:
    """The site's book from the backend; raises httpx.HTTPError or msgspec.ValidationError."""
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=FETCH_TIMEOUT, transport=transport) as http:
        response = http.get(BOOK_PATH, params={"site": site}, headers={"authorization": f"Bearer {token}"})
        response.raise_for_status()
    return msgspec.json.decode(response.content, type=AllocationBook)


def save(directory: Path, book: AllocationBook) -> None:
    """Atomically, 0600 beside the config (it names patients' case COIs)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / BOOK_FILE
    partial = path.with_suffix(".part")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(msgspec.json.encode(book))
    partial.replace(path)


def load(directory: Path, site: str) -> AllocationBook | None:
    """The last book fetched for `site`, or None (none kept, unreadable, or another site's)."""
    with contextlib.suppress(OSError, msgspec.DecodeError):
        book = msgspec.json.decode((directory / BOOK_FILE).read_bytes(), type=AllocationBook)
        return book if book.site == site else None
    return None


def refresh(
    directory: Path, base_url: str | None, token: str | None, site: str | None
) -> AllocationBook | None:
    """The site's book: fetched when the backend answers (and kept), else the last one kept."""
    if site is None:
        return None
    if base_url and token:
        with contextlib.suppress(httpx.HTTPError, msgspec.ValidationError):
            book = fetch(base_url, token, site)
            save(directory, book)
            return book
    return load(directory, site)
