"""One scanning session: capture -> decode worker -> parse, debounce, workflow -> queue -> sender.

Threads: the caller's thread reads the source and draws the window (OpenCV windows belong to the main
thread); the decode worker does everything per frame up to writing scans to the queue; the sender
replays the queue to the backend. Verdicts from the worker and the sender meet in the reporter, the
banner and the tally that gives the exit status.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from scanner import allocations
from scanner.camera import Source, frames
from scanner.client import Accepted, BackendClient, Refused, Retry, SendResult, Unauthorized
from scanner.cue import Cue
from scanner.debounce import Debouncer
from scanner.decode import DEFAULT_MAX_SIDE, Detection
from scanner.output import Reporter
from scanner.parse import Foreign, Interpretation, Parsed, Rejected, display_text, interpret, kind_of
from scanner.pipeline import Decoded, DecodeWorker, Frame, FrameProcessor, FrameSlot
from scanner.queue import QueuedScan, ScanQueue, ScanState
from scanner.roi import RoiTracker
from scanner.sender import Sender
from scanner.verdict import ExitCode, Level, Tally, Verdict
from scanner.workflow import CUSTODY_MODES, Mode, Submit, Workflow

DEFAULT_DEBOUNCE = 2.0


@dataclass(frozen=True, slots=True)
class SessionOptions:
    mode: Mode
    site: str | None = None
    handover_to: str | None = None
    storage_location: str | None = None
    debounce: float = DEFAULT_DEBOUNCE
    headless: bool = True
    sound: bool = False
    once: bool = False  # stop at the first OK or STOP verdict
    backend: str | None = None
    token: str | None = None
    queue_path: Path | None = None
    send_timeout: float = 10.0  # how long a file run waits at its end for the backend's answers
    max_side: int = DEFAULT_MAX_SIDE


@dataclass(frozen=True, slots=True)
class SessionResult:
    exit_code: ExitCode
    frames: int
    dropped: int


def _device_time() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Session:
    def __init__(
        self,
        options: SessionOptions,
        reporter: Reporter,
        *,
        client: BackendClient | None = None,
    ) -> None:
        self.options = options
        self.reporter = reporter
        book = None
        if options.mode is Mode.BEDSIDE_VERIFY and options.queue_path is not None:
            # Fetched now if online (and kept beside the queue), else the last kept: bags of a batch.
            book = allocations.refresh(
                options.queue_path.parent, options.backend, options.token, options.site
            )
        self.workflow = Workflow(
            options.mode,
            handover_to=options.handover_to,
            storage_location=options.storage_location,
            allocations=book,
        )
        self.debouncer = Debouncer(options.debounce)
        self.tally = Tally()
        self.cue = Cue(options.sound)
        self.stop = threading.Event()
        self.frames_decoded = 0
        self._lock = threading.Lock()
        self.latest: tuple[list[Interpretation], Verdict | None] = ([], None)
        self._verdict: Verdict | None = None
        self._made: dict[str, tuple[str, str]] = {}  # this session's scans: key -> (action, subject)
        self._answered: set[str] = set()
        self._announced: set[str] = set()  # told the operator it is saved offline
        self.queue: ScanQueue | None = None
        self.sender: Sender | None = None
        if options.mode in CUSTODY_MODES:
            if options.queue_path is None or not (options.backend or client):
                raise ValueError("custody modes need a backend and a queue")
            self.queue = ScanQueue(options.queue_path)
            client = client or BackendClient(options.backend or "", options.token)
            self.sender = Sender(self.queue, client, on_result=self._on_result)

    # ------------------------------------------------------------------------------- verdicts

    def show(self, verdict: Verdict, **context: object) -> None:
        with self._lock:
            self._verdict = verdict
            self.tally.add(verdict)
        self.reporter.emit(
            "verdict", level=str(verdict.level), message=verdict.message, detail=verdict.detail, **context
        )
        self.cue.play(verdict.level)
        if self.options.once and verdict.level in (Level.OK, Level.STOP):
            self.stop.set()

    # ------------------------------------------------------------------------------- per frame

    def on_decoded(self, decoded: Decoded) -> None:
        """Runs in the decode worker for every decoded frame, in frame order."""
        frame, t = decoded.frame.index, decoded.frame.t
        self.frames_decoded += 1
        items = [interpret(detection) for detection in decoded.detections]
        seen: list[Parsed] = []
        reported: list[Parsed] = []
        rejected: list[Detection] = []
        bedside = self.options.mode is Mode.BEDSIDE_VERIFY
        for item in items:
            key = item.key if isinstance(item, Parsed) else f"raw:{item.detection.text}"
            fresh = self.debouncer.admit(key, t)
            where = {"frame": frame, "t": round(t, 3)}
            detection = item.detection
            match item:
                case Parsed():
                    seen.append(item)
                    if fresh:
                        reported.append(item)
                        self.reporter.emit(
                            "code",
                            kind=kind_of(item.identifier),
                            id=item.key,
                            display=display_text(item.identifier),
                            text=detection.text,
                            symbology=detection.symbology,
                            decoder=detection.decoder,
                            **where,
                        )
                case Rejected() if bedside:
                    # At the bedside the workflow decides: a damaged symbol on a label discards the
                    # frame, one elsewhere stops only when read the same way twice (a misread must not).
                    rejected.append(detection)
                    if fresh:
                        self.reporter.emit(
                            "rejected",
                            text=detection.text,
                            symbology=detection.symbology,
                            field=item.field,
                            reason=item.reason,
                            **where,
                        )
                case Rejected() if fresh:
                    self.reporter.emit(
                        "rejected",
                        text=detection.text,
                        symbology=detection.symbology,
                        field=item.field,
                        reason=item.reason,
                        **where,
                    )
                    stop = Verdict(Level.STOP, f"REJECTED code {detection.text[:40]!r}", item.reason)
                    self.show(stop, **where)
                case Foreign() if fresh:
                    self.reporter.emit("ignored", text=detection.text, reason=item.reason, **where)
        for step in self.workflow.on_frame(t, seen, reported, rejected):
            if isinstance(step, Submit):
                self.submit(step, frame, t)
            else:
                self.show(step, frame=frame, t=round(t, 3))
        with self._lock:
            self.latest = (items, self._verdict)
        self.debouncer.forget_before(t)

    # ------------------------------------------------------------------------------- custody steps

    def submit(self, step: Submit, frame: int, t: float) -> None:
        """Write the step to the queue (durably) before anything is sent, then wake the sender."""
        if self.queue is None or self.sender is None:
            raise RuntimeError(f"{self.options.mode} records nothing on the backend")
        key = str(uuid.uuid4())
        body = {
            "idempotency_key": key,
            "action": step.action,
            "site": self.options.site,
            "codes": list(step.codes),
            "device_time": _device_time(),
            "gps": None,
            "handover_to": step.handover_to,
            "storage_location": step.storage_location,
            "reason": None,
        }
        # One pending scan per (action, site, item): a label scanned again while offline, in this
        # session or an earlier one, is the scan already waiting, not a second one to be refused later.
        item = f"{step.action}|{self.options.site or ''}|{step.item or ' '.join(step.codes)}"
        scan = self.queue.enqueue(self.sender.backend, key, msgspec.json.encode(body), step.subject, item)
        if scan.state is ScanState.PENDING:
            with self._lock:
                self._made[scan.idempotency_key] = (step.action, step.subject)
        if scan.idempotency_key != key:
            self.reporter.emit(
                "already-queued",
                idempotency_key=scan.idempotency_key,
                action=step.action,
                codes=list(step.codes),
                subject=step.subject,
                state=str(scan.state),
                frame=frame,
                t=round(t, 3),
            )
            if scan.state is ScanState.PENDING:
                with self._lock:
                    self._announced.add(scan.idempotency_key)  # this message already says it is saved
                waiting = Verdict(
                    Level.WAIT, f"already saved: {step.action} {step.subject}", "not queued again"
                )
                self.show(waiting, frame=frame, t=round(t, 3))
            self.sender.wake()
            return
        self.reporter.emit(
            "queued",
            idempotency_key=key,
            action=step.action,
            codes=list(step.codes),
            subject=step.subject,
            frame=frame,
            t=round(t, 3),
        )
        self.sender.wake()

    def _on_result(self, scan: QueuedScan, result: SendResult) -> None:
        """Runs in the sender thread for every answer (or failure to get one)."""
        body = msgspec.json.decode(scan.body)
        action = str(body.get("action", "scan"))
        subject = scan.subject or " ".join(body.get("codes", []))
        common = {"idempotency_key": scan.idempotency_key, "action": action, "subject": subject}
        if isinstance(result, Accepted | Refused):
            with self._lock:
                self._answered.add(scan.idempotency_key)
        match result:
            case Accepted():
                self.reporter.emit(
                    "sent", result="accepted", status=result.status, response=result.data, **common
                )
                message = str(result.data.get("message") or "")
                self.show(Verdict(Level.OK, f"{action} recorded: {subject}", message))
            case Refused():
                self.reporter.emit(
                    "sent",
                    result="refused",
                    status=result.status,
                    refusal=result.refusal,
                    detail=result.detail,
                    problem=result.problem,
                    **common,
                )
                reason = f" ({result.refusal})" if result.refusal else ""
                self.show(Verdict(Level.STOP, f"{action} REFUSED{reason}: {subject}", result.detail))
            case Unauthorized():
                self.reporter.emit(
                    "sent", result="login", status=result.status, detail=result.detail, **common
                )
                with self._lock:
                    first = not self.tally.login_required
                    self.tally.login_required = True
                if first:
                    self.show(Verdict(Level.WAIT, "log in again: celltrail scan login", "scans stay queued"))
            case Retry():
                self.reporter.emit("sent", result="retry", detail=result.reason, **common)
                self._announce_offline(result.reason)

    def _announce_offline(self, reason: str) -> None:
        """Tell the operator, once per scan, that this session's unsent scans are safe on disk (the
        scan that failed may be an older one blocking the queue)."""
        with self._lock:
            fresh = [(k, v) for k, v in self._made.items() if k not in self._answered | self._announced]
            self._announced.update(key for key, _ in fresh)
        for _, (action, subject) in fresh:
            self.show(Verdict(Level.WAIT, f"saved offline: {action} {subject}", reason))

    # ------------------------------------------------------------------------------- run

    def run(self, source: Source, *, on_frame: Callable[[Frame], bool] | None = None) -> SessionResult:
        """Scan ``source`` until it ends, ``stop`` is set or ``on_frame`` returns False."""
        self.reporter.emit(
            "start",
            mode=str(self.options.mode),
            source=source.describe(),
            site=self.options.site,
            backend=self.sender.backend if self.sender else None,
        )
        slot = FrameSlot(drop=source.live)
        worker = DecodeWorker(slot, FrameProcessor(RoiTracker(), self.options.max_side), self.on_decoded)
        if self.sender is not None:
            self.sender.start()
        worker.start()
        read = 0
        try:
            try:
                for frame in frames(source, self.stop):
                    read += 1
                    if not slot.put(frame) or self.stop.is_set():
                        break
                    if on_frame is not None and not on_frame(frame):
                        break
            except KeyboardInterrupt:
                pass  # Ctrl-C ends a live session the way q does: queued scans still get their chance
            finally:
                slot.close()
                worker.join()
                self.stop.set()
            if worker.error is not None:
                raise worker.error
        except BaseException:
            self._close()
            raise
        return self._finish(read, slot.dropped)

    def _close(self) -> None:
        if self.sender is not None:
            self.sender.stop()
        if self.queue is not None:
            self.queue.close()
        self.cue.close()

    def _finish(self, read: int, dropped: int) -> SessionResult:
        if self.sender is not None and self.queue is not None:
            self.sender.wake()
            self.sender.wait_settled(self.options.send_timeout)
            self.sender.stop()
            pending = {scan.idempotency_key for scan in self.queue.scans(ScanState.PENDING)}
            self.tally.pending = len(pending & set(self._made))
            self.queue.close()
        code = self.tally.exit_code()
        self.reporter.emit(
            "end",
            exit_code=int(code),
            frames=read,
            decoded=self.frames_decoded,
            dropped=dropped,
            pending=self.tally.pending,
        )
        self.cue.close()
        return SessionResult(code, read, dropped)


def run_session(
    source: Source,
    options: SessionOptions,
    reporter: Reporter,
    *,
    client: BackendClient | None = None,
    on_frame: Callable[[Session, Frame], bool] | None = None,
) -> SessionResult:
    """Scan ``source`` headless (or with ``on_frame`` drawing a window) and return the exit status."""
    session = Session(options, reporter, client=client)
    if on_frame is None:
        return session.run(source)
    return session.run(source, on_frame=lambda frame: on_frame(session, frame))
