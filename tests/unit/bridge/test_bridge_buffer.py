"""The disk queue: FIFO, bounded, crash-safe, nothing lost or duplicated across reopenings."""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import textwrap
from collections import deque
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.buffer import BufferFull, DiskBuffer


def drain(buffer: DiskBuffer) -> list[tuple[str, bytes]]:
    out = []
    while (head := buffer.peek()) is not None:
        out.append((head.batch_id, head.body))
        buffer.remove(head)
    return out


def test_fifo_and_accounting(tmp_path):
    buffer = DiskBuffer(tmp_path, max_bytes=1000)
    for i in range(5):
        buffer.put(f"b{i}", bytes([i]) * 10, readings=i)
    assert (buffer.depth, buffer.size_bytes) == (5, 50)
    head = buffer.peek()
    assert head is not None
    assert (head.batch_id, head.readings) == ("b0", 0)
    assert [b for b, _ in drain(buffer)] == ["b0", "b1", "b2", "b3", "b4"]
    assert (buffer.depth, buffer.size_bytes) == (0, 0)


def test_reopen_replays_in_order(tmp_path):
    first = DiskBuffer(tmp_path, max_bytes=10_000)
    for i in range(10):
        first.put(f"b{i}", f"body-{i}".encode())
    head = first.peek()
    assert head is not None
    first.remove(head)
    first.close()
    second = DiskBuffer(tmp_path, max_bytes=10_000)
    assert second.depth == 9
    assert drain(second) == [(f"b{i}", f"body-{i}".encode()) for i in range(1, 10)]


def test_bounded(tmp_path):
    buffer = DiskBuffer(tmp_path, max_bytes=100)
    buffer.put("a", b"x" * 60)
    with pytest.raises(BufferFull):
        buffer.put("b", b"x" * 41)
    buffer.put("c", b"x" * 40)
    assert buffer.fill_ratio == 1.0
    head = buffer.peek()
    assert head is not None
    buffer.remove(head)
    buffer.put("d", b"x" * 60)
    assert [b for b, _ in drain(buffer)] == ["c", "d"]


def test_warns_once_when_over_80_percent(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="firmware_bridge.buffer")
    buffer = DiskBuffer(tmp_path, max_bytes=100)
    buffer.put("a", b"x" * 70)
    assert caplog.records == []
    buffer.put("b", b"x" * 11)
    buffer.put("c", b"x" * 5)
    assert [r.getMessage()[:22] for r in caplog.records] == ["disk buffer 81% full ("]


def test_rejected_batches_are_kept_with_their_reason(tmp_path):
    buffer = DiskBuffer(tmp_path, max_bytes=100)
    path = buffer.reject("batch-1", b"\x81\xa1a\x01", "HTTP 422: readings[0].ts invalid")
    assert path.read_bytes() == b"\x81\xa1a\x01"
    assert path.with_suffix(".txt").read_text() == "HTTP 422: readings[0].ts invalid"
    assert buffer.rejected_files() == [path]
    assert buffer.depth == 0


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from firmware_bridge.buffer import DiskBuffer
    buffer = DiskBuffer(Path(sys.argv[1]), max_bytes=10**9)
    for i in range(1000):
        buffer.put(f"b{i}", f"body-{i}".encode() * 50)
        print(i, flush=True)
        if i == 120:
            os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_survives_a_kill_between_writes(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == -9, result.stderr
    acknowledged = int(result.stdout.split()[-1]) + 1
    reopened = DiskBuffer(tmp_path, max_bytes=10**9)
    batches = drain(reopened)
    # Every put that returned is there, in order, whole, and nothing else.
    assert len(batches) == acknowledged
    assert batches == [(f"b{i}", f"body-{i}".encode() * 50) for i in range(acknowledged)]


operations = st.lists(st.sampled_from(["put", "take", "reopen"]), max_size=60)


@settings(max_examples=40, deadline=None)
@given(operations)
def test_nothing_lost_or_duplicated(ops):
    with tempfile.TemporaryDirectory() as folder:
        buffer = DiskBuffer(Path(folder), max_bytes=10**6)
        model: deque[str] = deque()
        taken: list[str] = []
        counter = 0
        for op in ops:
            if op == "put":
                buffer.put(f"b{counter}", str(counter).encode())
                model.append(f"b{counter}")
                counter += 1
            elif op == "take":
                head = buffer.peek()
                assert (head.batch_id if head else None) == (model[0] if model else None)
                if head is not None:
                    buffer.remove(head)
                    taken.append(model.popleft())
            else:
                buffer.close()
                buffer = DiskBuffer(Path(folder), max_bytes=10**6)
            assert buffer.depth == len(model)
        taken += [batch_id for batch_id, _ in drain(buffer)]
        buffer.close()
        assert taken == [f"b{i}" for i in range(counter)]
