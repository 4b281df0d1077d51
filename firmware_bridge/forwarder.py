"""The forwarding pipeline: decoded messages -> micro-batches -> backend, or the disk buffer meanwhile.

One worker thread owns the batcher, the disk buffer and the HTTP client, so batches are committed
strictly in the order they were made and the MQTT acknowledgements go out in the order the messages
arrived (MQTT requires PUBACKs in order). A batch counts as committed when the backend answered 200
(durably stored) or the batch is fsync'd in the disk buffer; only then are its messages acknowledged
to the broker, so a crash at any point leaves every unacknowledged message with the broker, which
redelivers it to our persistent session.

While the disk buffer holds anything, new batches are appended behind it and the buffer is replayed
head first, so the backend sees batches in the order they were made. When the buffer is full, batches
wait in memory unacknowledged. Backpressure: ``submit`` blocks the MQTT network thread once
``max_unacked`` messages are waiting, so the bridge stops reading its socket and the broker keeps the
rest in our session. The MQTT 5 receive maximum says the same to the broker, but Mosquitto 2.0 does not
always honour it once acknowledgements flow (eclipse-mosquitto issue 2301), and MQTT 3.1.1 has no such
property, so the bridge enforces its own window. If the backend stays away long enough for keepalives
to lapse, the broker drops the connection; the session keeps the messages and the bridge reconnects.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final, NamedTuple

from firmware_bridge.batcher import Batcher, PendingBatch
from firmware_bridge.buffer import BufferFull, DiskBuffer
from firmware_bridge.ingest_client import BatchSender, Outcome, SendResult
from firmware_bridge.ingest_contract import DeadLetter, IngestBatch, encode_batch
from firmware_bridge.metrics import BridgeMetrics
from firmware_bridge.payloads import Decoded

log = logging.getLogger(__name__)

RETRY_MIN_S: Final = 0.1
# How long one round of disk replay may keep the worker from new messages.
REPLAY_SLICE_S: Final = 0.2
IDLE_WAKE_S: Final = 0.5

AckFn = Callable[[Sequence[object]], None]


class _Inbound(NamedTuple):
    at: float
    token: object
    item: Decoded | DeadLetter


class Forwarder:
    def __init__(
        self,
        *,
        bridge_id: str,
        buffer: DiskBuffer,
        sender: BatchSender,
        metrics: BridgeMetrics,
        ack: AckFn,
        batch_size: int,
        batch_ms: int,
        retry_max_s: float,
        max_unacked: int = 2000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bridge_id = bridge_id
        self._buffer = buffer
        self._sender = sender
        self._metrics = metrics
        self._ack = ack
        self._clock = clock
        self._batcher = Batcher(batch_size, batch_ms / 1000.0)
        # None is a wake-up call from stop(), so the worker does not sleep out its idle wait.
        self._inbound: queue.SimpleQueue[_Inbound | None] = queue.SimpleQueue()
        self._waiting: deque[PendingBatch] = deque()
        self._retry_max_s = retry_max_s
        self._retry_delay = 0.0
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._submitted = 0
        self._acked = 0
        self._max_unacked = max_unacked
        # Guards the two counters; submit() waits on it for room in the unacknowledged window.
        self._room = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="bridge-forwarder", daemon=True)
        self._held_logged = False
        self._update_buffer_gauges()

    # -- called from other threads -------------------------------------------------------------------

    def submit(self, item: Decoded | DeadLetter, token: object) -> None:
        """Hand over one decoded MQTT message; ``token`` comes back through ``ack`` once committed.
        Blocks while ``max_unacked`` messages wait for their commit (see the module docstring). While
        stopping, the message is left unacknowledged for the broker to redeliver."""
        with self._room:
            while self._submitted - self._acked >= self._max_unacked and not self._stop.is_set():
                self._room.wait(1.0)
            if self._stop.is_set():
                return
            self._submitted += 1
        self._inbound.put(_Inbound(self._clock(), token, item))

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit everything received so far (backend or disk) and stop the worker."""
        self._stop.set()
        with self._room:
            self._room.notify_all()
        self._inbound.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(
                "forwarder did not finish within %.1f s; unacknowledged messages stay with the broker",
                timeout,
            )

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def unacked(self) -> int:
        with self._room:
            return self._submitted - self._acked

    # -- the worker ----------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                stopping = self._stop.is_set()
                self._drain_inbound(0.0 if stopping else self._wait_s())
                now = self._clock()
                if stopping and not self._inbound.empty():
                    continue
                self._waiting.extend(self._batcher.pop_ready(now, force=stopping))
                self._progress(now, final=stopping)
                self._metrics.unacked.set(self.unacked)
                if stopping:
                    if self._waiting:
                        log.warning(
                            "stopping with %d batches not stored anywhere; the broker redelivers them",
                            len(self._waiting),
                        )
                    return
        except Exception:
            # Nothing was acknowledged that is not committed, so dying here loses nothing; say so loudly.
            log.exception("forwarder crashed; unacknowledged messages stay with the broker")
            raise

    def _wait_s(self) -> float:
        now = self._clock()
        deadline = self._batcher.deadline()
        wait = IDLE_WAKE_S
        if deadline is not None:
            wait = min(wait, deadline - now)
        if self._buffer.depth or self._waiting:
            wait = min(wait, self._retry_at - now)
        return max(wait, 0.0)

    def _drain_inbound(self, timeout: float) -> None:
        try:
            first = self._inbound.get(timeout=timeout) if timeout > 0 else self._inbound.get_nowait()
        except queue.Empty:
            return
        self._add(first)
        # Take what is already queued without waiting, but leave room to close batches on time.
        for _ in range(10_000):
            try:
                self._add(self._inbound.get_nowait())
            except queue.Empty:
                return

    def _add(self, entry: _Inbound | None) -> None:
        if entry is None:
            return
        item = entry.item
        if isinstance(item, DeadLetter):
            self._batcher.add(entry.at, entry.token, dead_letter=item)
        else:
            self._batcher.add(entry.at, entry.token, readings=item.readings, status=item.status)

    def _progress(self, now: float, final: bool) -> None:
        while self._waiting:
            if not self._commit(self._waiting[0], now):
                if not self._held_logged:
                    self._held_logged = True
                    log.error(
                        "disk buffer full and backend unavailable: holding %d batches unacknowledged; "
                        "the broker keeps the rest",
                        len(self._waiting),
                    )
                break
            self._held_logged = False
            batch = self._waiting.popleft()
            self._acknowledge(batch.acks)
        if not final or self._clock() >= self._retry_at:
            self._replay(now, once=final)

    def _commit(self, batch: PendingBatch, now: float) -> bool:
        """Store a batch in the backend or on disk. False: neither possible now (hold it)."""
        self._metrics.duplicates_dropped.inc(batch.duplicates_dropped)
        batch.duplicates_dropped = 0
        if batch.size == 0:
            return True
        if not batch.body:
            batch.batch_id = uuid.uuid4().hex
            batch.body = encode_batch(
                IngestBatch(
                    batch_id=batch.batch_id,
                    bridge_id=self.bridge_id,
                    readings=batch.readings,
                    statuses=batch.statuses,
                    dead_letters=batch.dead_letters,
                )
            )
        if self._buffer.depth == 0 and now >= self._retry_at:
            result = self._send(batch.body)
            if result.outcome is Outcome.STORED:
                self._stored(len(batch.readings), self._clock() - batch.first_at)
                if batch.readings:
                    newest = max(r.ts for r in batch.readings)
                    self._metrics.reading_age.set((datetime.now(UTC) - newest).total_seconds())
                return True
            if result.outcome is Outcome.REJECT:
                self._rejected(batch.batch_id, batch.body, result)
                return True
            self._backoff(result.detail)
        try:
            self._buffer.put(batch.batch_id, batch.body, len(batch.readings))
        except BufferFull:
            return False
        self._metrics.batches.inc(outcome="buffered")
        self._update_buffer_gauges()
        return True

    def _replay(self, now: float, once: bool) -> None:
        if not self._buffer.depth or now < self._retry_at:
            return
        started = self._clock()
        while self._clock() - started < REPLAY_SLICE_S:
            head = self._buffer.peek()
            if head is None:
                log.info("disk buffer drained; the backend is caught up")
                break
            result = self._send(head.body)
            if result.outcome is Outcome.RETRY:
                self._backoff(result.detail)
                break
            if result.outcome is Outcome.STORED:
                self._stored(head.readings, max(time.time() - head.created_at, 0.0))
            else:
                self._rejected(head.batch_id, head.body, result)
            self._buffer.remove(head)
            self._update_buffer_gauges()
            if once:
                break

    def _send(self, body: bytes) -> SendResult:
        try:
            return self._sender.send(body)
        except Exception as exc:
            # An unforeseen failure of the sender is one more reason to keep the batch and retry.
            log.exception("sending a batch failed unexpectedly")
            return SendResult(Outcome.RETRY, f"sender error: {type(exc).__name__}: {exc}")

    def _stored(self, readings: int, lag_s: float) -> None:
        self._retry_delay = 0.0
        self._retry_at = 0.0
        self._metrics.batches.inc(outcome="stored")
        self._metrics.readings_forwarded.inc(readings)
        self._metrics.lag.observe(lag_s)

    def _rejected(self, batch_id: str, body: bytes, result: SendResult) -> None:
        path = self._buffer.reject(batch_id, body, result.detail)
        self._metrics.batches.inc(outcome="rejected")
        log.error(
            "backend refused batch %s for good (%s); kept for review at %s", batch_id, result.detail, path
        )

    def _backoff(self, detail: str) -> None:
        first = self._retry_delay == 0.0
        self._retry_delay = min(max(self._retry_delay * 2, RETRY_MIN_S), self._retry_max_s)
        # Jitter keeps a fleet of bridges from retrying in lock-step after a backend restart.
        self._retry_at = self._clock() + self._retry_delay * random.uniform(0.8, 1.2)  # noqa: S311
        self._metrics.batches.inc(outcome="retry")
        if first:
            log.warning("backend unavailable (%s); buffering on disk and retrying", detail)
        else:
            log.debug("backend still unavailable (%s); next try in %.1f s", detail, self._retry_delay)

    def _acknowledge(self, tokens: Sequence[object]) -> None:
        if tokens:
            self._ack(tokens)
            with self._room:
                self._acked += len(tokens)
                self._room.notify_all()

    def _update_buffer_gauges(self) -> None:
        self._metrics.buffer_depth.set(self._buffer.depth)
        self._metrics.buffer_bytes.set(self._buffer.size_bytes)
        self._metrics.buffer_fill.set(round(self._buffer.fill_ratio, 4))
