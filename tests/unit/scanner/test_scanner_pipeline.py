"""The hand-over between capture and decoding: live sources drop frames, files never do."""

from __future__ import annotations

import threading
import time

import numpy as np

from scanner.pipeline import Decoded, DecodeWorker, Frame, FrameProcessor, FrameSlot

BLANK = np.zeros((4, 4), np.uint8)


def _frame(index: int) -> Frame:
    return Frame(index, index / 10, BLANK)


def _consume(slot: FrameSlot, seen: list[int], release: threading.Event | None = None) -> threading.Thread:
    def run() -> None:
        while (frame := slot.get()) is not None:
            seen.append(frame.index)
            if release is not None:
                release.wait()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_live_slot_keeps_only_the_newest_frame_while_the_worker_is_busy() -> None:
    slot = FrameSlot(drop=True)
    seen: list[int] = []
    release = threading.Event()
    consumer = _consume(slot, seen, release)
    slot.put(_frame(0))
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:  # the worker holds frame 0 and is "busy"
        time.sleep(0.005)

    for index in range(1, 100):
        assert slot.put(_frame(index))  # never blocks the capture loop
    release.set()
    slot.close()
    consumer.join(5)

    assert seen == [0, 99]
    assert slot.dropped == 98


def test_a_file_slot_delivers_every_frame_in_order() -> None:
    slot = FrameSlot(drop=False)
    seen: list[int] = []
    consumer = _consume(slot, seen)
    for index in range(200):
        assert slot.put(_frame(index))
    slot.close()
    consumer.join(5)

    assert seen == list(range(200))
    assert slot.dropped == 0


def test_a_closed_slot_refuses_frames_and_an_aborted_one_discards_the_waiting_frame() -> None:
    slot = FrameSlot(drop=True)
    slot.put(_frame(1))
    slot.abort()
    assert slot.get() is None
    assert not slot.put(_frame(2))


def test_the_worker_decodes_in_order_and_reports_a_crash() -> None:
    slot = FrameSlot(drop=False)
    results: list[Decoded] = []
    worker = DecodeWorker(slot, FrameProcessor(), results.append)
    worker.start()
    for index in range(3):
        slot.put(_frame(index))
    slot.close()
    worker.join(10)
    assert [r.frame.index for r in results] == [0, 1, 2]
    assert all(r.detections == [] for r in results)

    def explode(_: Decoded) -> None:
        raise RuntimeError("boom")

    slot = FrameSlot(drop=False)
    worker = DecodeWorker(slot, FrameProcessor(), explode)
    worker.start()
    slot.put(_frame(0))
    worker.join(10)
    assert isinstance(worker.error, RuntimeError)
    assert not slot.put(_frame(1))  # the capture loop learns at once that nobody is listening
