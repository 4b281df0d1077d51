"""Bedside verification of a bag of an allogeneic batch, offline: the bag carries its batch's COI, the
wristband its recipient's. Through the allocation book the scanner fetched while online, a fixed
allocation (the bag thawed) matches its recipient and stops anyone else; anything the book cannot settle
is "cannot verify offline — connect"; never a MATCH that is not so, never a false COI MISMATCH."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
import pytest

from celltrail_shared.identifiers import Coi, UnitId, UnitKind
from scanner import allocations
from scanner.allocations import AllocationBook, BookAllocation, compare
from scanner.verdict import Level, Verdict
from scanner.workflow import Mode, Workflow
from tests.unit.scanner.test_scanner_workflow import COI_A, COI_B, bag_symbols, band_symbols, frames

BATCH = COI_A  # the bag's COI: the batch's
ANNA, BEN = COI_B, Coi("G1234", "26", "Q1W2E3")
BAG = UnitId(BATCH, UnitKind.FINAL_PRODUCT, 1)


def book(*, fixed: bool = True, to: Coi | None = ANNA, batches: tuple[Coi, ...] = (BATCH,)) -> AllocationBook:
    allocated = {BAG.text: BookAllocation(to.value, fixed)} if to is not None else {}
    return AllocationBook("USZ", [b.value for b in batches], allocated, "2026-12-03T10:00:00Z")


def verdict(workflow: Workflow, band: Coi) -> Verdict:
    frames(workflow, 0.0, band_symbols(band))
    (found,) = frames(workflow, 2.0, bag_symbols(BATCH))
    assert isinstance(found, Verdict)
    return found


def test_a_thawed_bag_matches_its_recipient_and_stops_another() -> None:
    assert verdict(Workflow(Mode.BEDSIDE_VERIFY, allocations=book()), ANNA).level is Level.OK
    stop = verdict(Workflow(Mode.BEDSIDE_VERIFY, allocations=book()), BEN)
    assert stop.level is Level.STOP
    assert ANNA.eye_readable in stop.message
    assert BEN.eye_readable in stop.message


@pytest.mark.parametrize(
    "known",
    [
        book(fixed=False),  # allocated but not thawed: withdrawn since, perhaps
        book(fixed=False, to=BEN),  # allocated to another: withdrawn and allocated again since, perhaps
        book(to=None),  # of a known batch, allocated to nobody when the book was fetched
    ],
    ids=["not fixed", "not fixed to another", "unallocated"],
)
def test_what_the_book_cannot_settle_is_cannot_verify_never_match_nor_mismatch(known: AllocationBook) -> None:
    found = verdict(Workflow(Mode.BEDSIDE_VERIFY, allocations=known), ANNA)
    assert found.level is Level.WAIT
    assert "CANNOT VERIFY OFFLINE" in found.message
    assert "connect" in found.message


def test_a_wristband_naming_the_batch_itself_is_a_stop() -> None:
    assert compare(book(to=None), BAG, BATCH).level is Level.STOP
    assert compare(book(), BAG, BATCH).level is Level.STOP


def test_a_bag_of_no_known_batch_is_compared_by_its_coi() -> None:
    other = book(batches=(), to=None)
    assert compare(other, BAG, BATCH).level is Level.OK
    assert compare(other, BAG, ANNA).level is Level.STOP
    # Without any book a mismatch still stops, and says that a batch's bag needs the scanner online.
    stop = compare(None, BAG, ANNA)
    assert stop.level is Level.STOP
    assert "connect" in stop.detail


def test_the_book_is_fetched_kept_and_used_offline(tmp_path: Path) -> None:
    served = book()
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=msgspec.json.encode(served))

    fetched = allocations.fetch("http://backend", "token", "USZ", transport=httpx.MockTransport(answer))
    assert fetched == served
    assert seen[0].url.params["site"] == "USZ"
    assert seen[0].headers["authorization"] == "Bearer token"
    allocations.save(tmp_path, fetched)
    assert (tmp_path / allocations.BOOK_FILE).stat().st_mode & 0o777 == 0o600
    # Offline (no backend): the book kept for the site, none for another site.
    assert allocations.refresh(tmp_path, None, None, "USZ") == served
    assert allocations.refresh(tmp_path, None, None, "KSW") is None
    assert allocations.refresh(tmp_path, None, None, None) is None
    # A backend that does not answer: the book kept.
    assert allocations.refresh(tmp_path, "http://127.0.0.1:9", "token", "USZ") == served
    (tmp_path / allocations.BOOK_FILE).write_text("not json")
    assert allocations.load(tmp_path, "USZ") is None
