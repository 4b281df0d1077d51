"""Replays the offline queue to the backend, in order, with backoff while the backend is away.

The oldest pending scan is always sent first and a later scan waits behind it: custody steps depend on
each other (receive after pickup), so they must arrive in the order they were made. Transient failures
back off exponentially (with jitter, capped); a 401 pauses sending until the next wake-up, because only
a new login can fix it; a refusal is final and sending moves on.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from enum import StrEnum

from scanner.client import Accepted, BackendClient, Refused, Retry, SendResult, Unauthorized
from scanner.queue import QueuedScan, ScanQueue, ScanState


class Drain(StrEnum):
    IDLE = "idle"  # nothing pending for this backend
    RETRY = "retry"  # the backend did not answer; try again later
    LOGIN = "login"  # 401: a new login is needed
    BUSY = "busy"  # another process is sending from this queue


OnResult = Callable[[QueuedScan, SendResult], None]


class Sender:
    def __init__(
        self,
        queue: ScanQueue,
        client: BackendClient,
        *,
        on_result: OnResult | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        lease_seconds: float = 15.0,
    ) -> None:
        self.queue = queue
        self.client = client
        self.backend = client.base_url
        self.on_result = on_result
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.lease_seconds = lease_seconds
        self.owner = f"{uuid.uuid4()}"
        self.last = Drain.IDLE
        self._backoff = backoff_initial
        self._retry_after: float | None = None
        self._wake = threading.Event()
        self._settled = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------- one pass

    def drain(self) -> Drain:
        """Send pending scans until none is left or one gets no definitive answer. The lease is held
        only while sending, so another process can flush the queue while this one is idle."""
        if not self.queue.acquire_lease(self.owner, self.lease_seconds):
            self.last = Drain.BUSY
            return self.last
        try:
            self.last = self._send_pending()
        finally:
            self.queue.release_lease(self.owner)
        return self.last

    def _send_pending(self) -> Drain:
        while not self._stopping.is_set():
            scan = self.queue.next_pending(self.backend)
            if scan is None:
                return Drain.IDLE
            result = self.client.send_scan(scan.body)
            outcome = self._record(scan, result)
            if self.on_result is not None:
                self.on_result(scan, result)
            if outcome is not None:
                return outcome
            self.queue.acquire_lease(self.owner, self.lease_seconds)  # renew while sending a backlog
        return Drain.RETRY

    def _record(self, scan: QueuedScan, result: SendResult) -> Drain | None:
        match result:
            case Accepted():
                self.queue.record_answer(scan.seq, ScanState.ACCEPTED, result.status, result.body)
            case Refused():
                self.queue.record_answer(scan.seq, ScanState.REFUSED, result.status, result.body)
            case Unauthorized():
                self.queue.record_attempt(scan.seq, f"HTTP 401: {result.detail}")
                return Drain.LOGIN
            case Retry():
                self.queue.record_attempt(scan.seq, result.reason)
                self._retry_after = result.retry_after
                return Drain.RETRY
        self._backoff = self.backoff_initial
        return None

    # ----------------------------------------------------------------------------------- thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="celltrail-sender", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Something was queued: try now (also cuts a backoff wait short)."""
        self._settled.clear()
        self._wake.set()

    def wait_settled(self, timeout: float) -> bool:
        """Wait until the sender has tried everything queued so far (sent, or given up for now)."""
        return self._settled.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.queue.release_lease(self.owner)

    def next_delay(self) -> float:
        """The next backoff wait: doubles up to ``backoff_max``, +-20 % jitter, at least Retry-After."""
        delay = self._backoff * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
        self._backoff = min(self.backoff_max, self._backoff * 2)
        if self._retry_after is not None:
            delay = max(delay, self._retry_after)
            self._retry_after = None
        return delay

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                outcome = self.drain()
            except Exception:
                if self._stopping.is_set():
                    break  # the session closed the queue under a send that outlived stop()'s wait
                raise
            if not self._wake.is_set():
                self._settled.set()
            if outcome is Drain.IDLE or outcome is Drain.LOGIN:
                self._wake.wait()
            elif outcome is Drain.BUSY:
                self._wake.wait(self.lease_seconds)
            else:
                self._wake.wait(self.next_delay())
        self._settled.set()
