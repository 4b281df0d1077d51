"""``celltrail scan``: camera scanning for couriers and pharmacists.

    celltrail scan login --backend URL --username NAME [--password-stdin]
    celltrail scan --mode receive --site CRX-ZRH [--camera 0 | --source URL | --video FILE | --image FILE]
    celltrail scan --status          what is queued offline
    celltrail scan --flush           send what is queued, then exit

Exit status: see :class:`scanner.verdict.ExitCode` (0 OK, 1 STOP, 2 usage, 3 log in again, 4 nothing
recorded or verified, 5 saved offline but not yet confirmed).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner.config import QUEUE_FILE, ScannerConfig, config_dir, load_config, resolve_backend, save_config
from scanner.verdict import ExitCode
from scanner.workflow import CUSTODY_MODES, Mode

if TYPE_CHECKING:
    from scanner.camera import Source
    from scanner.output import Reporter
    from scanner.pipeline import Frame


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Scan labels with a camera and record custody steps. Every scan is saved locally before it is "
        "sent, so scanning works offline; queued scans are sent in order when the backend is back."
    )
    parser.epilog = (
        "exit status: 0 recorded/verified, 1 STOP shown, 2 usage error, 3 log in again (scans kept), "
        "4 nothing recorded or verified, 5 saved offline but not yet confirmed"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--camera", metavar="N|PATH", help="camera index or device path (default: 0)")
    source.add_argument("--source", metavar="URL", help="RTSP or HTTP video stream")
    source.add_argument("--video", metavar="FILE", help="a video file (every frame is decoded)")
    source.add_argument("--image", metavar="FILE", help="a still image")
    parser.add_argument("--mode", choices=[str(mode) for mode in Mode], help="workflow step to record")
    parser.add_argument(
        "--site", metavar="CODE", help="site where the scan happens (default: your only site)"
    )
    parser.add_argument("--handover-to", metavar="USERNAME", help="who receives the shipment (handover)")
    parser.add_argument("--storage-location", metavar="TEXT", help="where the bag is stored (store)")
    parser.add_argument(
        "--debounce",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="report a code again only after it was out of view this long (default: 2)",
    )
    parser.add_argument(
        "--backend",
        metavar="URL",
        help="backend URL (default: CELLTRAIL_BACKEND_URL, else the one logged in to)",
    )
    parser.add_argument("--headless", action="store_true", help="no window, even when a display exists")
    parser.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    parser.add_argument("--no-sound", action="store_true", help="no audible cues")
    parser.add_argument("--once", action="store_true", help="stop at the first OK or STOP")
    parser.add_argument(
        "--send-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the backend's answers before exiting (default: 10)",
    )
    parser.add_argument(
        "--max-side",
        type=int,
        default=1280,
        metavar="PX",
        help="shrink larger frames before decoding the whole frame (default: 1280)",
    )
    parser.add_argument("--status", action="store_true", help="show the offline queue and exit")
    parser.add_argument("--flush", action="store_true", help="send the offline queue and exit")
    commands = parser.add_subparsers(dest="scan_command", metavar="login")
    login = commands.add_parser("login", help="log in once; the token is kept for later scans")
    login.add_argument("--backend", default=argparse.SUPPRESS, metavar="URL", help="backend URL")
    login.add_argument("--username", required=True)
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output")


def _fail(message: str, code: ExitCode = ExitCode.USAGE) -> int:
    print(f"celltrail scan: {message}", file=sys.stderr)
    return int(code)


def run(args: argparse.Namespace) -> int:
    directory = config_dir()
    try:
        config = load_config(directory)
    except ValueError as exc:
        if args.scan_command != "login":
            return _fail(str(exc))
        config = ScannerConfig()
    backend = resolve_backend(args.backend, os.environ, config)
    if args.scan_command == "login":
        return _login(args, directory, backend)
    if args.status:
        return _status(args, directory)
    if args.flush:
        return _flush(args, directory, config, backend)
    return _scan(args, directory, config, backend)


def _reporter(args: argparse.Namespace) -> Reporter:
    from scanner.output import Reporter

    return Reporter(sys.stdout, json_lines=args.json)


def _token(config: ScannerConfig, backend: str) -> str | None:
    """The saved token, if it was issued by ``backend`` (a token from another backend is useless)."""
    if config.backend and config.backend.rstrip("/") == backend:
        return config.token
    return None


# ----------------------------------------------------------------------------------------- login


def _login(args: argparse.Namespace, directory: Path, backend: str | None) -> int:
    from scanner.client import BackendClient, LoginError

    if not backend:
        return _fail("login needs --backend URL (or CELLTRAIL_BACKEND_URL)")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.username} at {backend}: ")
    if not password:
        return _fail("empty password")
    with BackendClient(backend) as client:
        try:
            answer = client.login(args.username, password)
        except LoginError as exc:
            return _fail(f"login failed: {exc}", ExitCode.LOGIN)
    path = save_config(
        directory,
        ScannerConfig(backend=backend, token=answer.token, expires_at=answer.expires_at, user=answer.user),
    )
    reporter = _reporter(args)
    user = answer.user
    reporter.emit(
        "login",
        backend=backend,
        username=args.username,
        full_name=user.full_name if user else "",
        sites=user.sites if user else [],
        expires_at=answer.expires_at,
        config=str(path),
    )
    if not args.json:
        sites = ", ".join(user.sites) if user and user.sites else "none"
        print(f"logged in as {args.username} at {backend} (sites: {sites}); token saved in {path}")
    return int(ExitCode.OK)


# ----------------------------------------------------------------------------------------- queue


def _scan_fields(body: bytes) -> dict[str, Any]:
    import msgspec

    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return {}
    return {"action": value.get("action"), "codes": value.get("codes")} if isinstance(value, dict) else {}


def _status(args: argparse.Namespace, directory: Path) -> int:
    from scanner.queue import ScanQueue, ScanState

    path = directory / QUEUE_FILE
    if not path.exists():
        if args.json:
            print('{"event": "status", "pending": 0, "accepted": 0, "refused": 0}')
        else:
            print("the offline queue is empty")
        return int(ExitCode.OK)
    queue = ScanQueue(path)
    try:
        scans = queue.scans()
    finally:
        queue.close()
    reporter = _reporter(args)
    counts = {state: sum(1 for scan in scans if scan.state is state) for state in ScanState}
    reporter.emit("status", queue=str(path), **{str(state): n for state, n in counts.items()})
    if not args.json:
        print(
            f"{counts[ScanState.PENDING]} pending, {counts[ScanState.ACCEPTED]} accepted, "
            f"{counts[ScanState.REFUSED]} refused  ({path})"
        )
    for scan in scans:
        if scan.state is ScanState.ACCEPTED:
            continue
        fields = _scan_fields(scan.body)
        reporter.emit(
            str(scan.state),
            seq=scan.seq,
            idempotency_key=scan.idempotency_key,
            backend=scan.backend,
            subject=scan.subject,
            created_at=scan.created_at,
            attempts=scan.attempts,
            last_error=scan.last_error,
            http_status=scan.http_status,
            **fields,
        )
        if not args.json:
            why = scan.last_error or "not sent yet"
            if scan.state is ScanState.REFUSED:
                why = f"refused (HTTP {scan.http_status})"
            print(
                f"  #{scan.seq} {scan.state:<8} {fields.get('action')} {scan.subject}  {scan.created_at}  "
                f"{scan.attempts} attempts  {why}"
            )
    return int(ExitCode.QUEUED if counts[ScanState.PENDING] else ExitCode.OK)


def _flush(args: argparse.Namespace, directory: Path, config: ScannerConfig, backend: str | None) -> int:
    from scanner.client import BackendClient, Refused, SendResult
    from scanner.queue import QueuedScan, ScanQueue
    from scanner.sender import Drain, Sender

    if not backend:
        return _fail("no backend: use --backend URL or celltrail scan login")
    reporter = _reporter(args)
    refused = 0

    def on_result(scan: QueuedScan, result: SendResult) -> None:
        nonlocal refused
        refused += isinstance(result, Refused)
        name = type(result).__name__.lower()
        reporter.emit("sent", idempotency_key=scan.idempotency_key, subject=scan.subject, result=name)
        if not args.json:
            print(f"  #{scan.seq} {scan.subject}: {name}")

    queue = ScanQueue(directory / QUEUE_FILE)
    client = BackendClient(backend, _token(config, backend))
    sender = Sender(queue, client, on_result=on_result, backoff_initial=0.5, backoff_max=4.0)
    deadline = time.monotonic() + args.send_timeout
    try:
        while (outcome := sender.drain()) in (Drain.RETRY, Drain.BUSY) and time.monotonic() < deadline:
            time.sleep(min(sender.next_delay(), max(0.0, deadline - time.monotonic())))
        pending = queue.count_pending(backend)
    finally:
        client.close()
        queue.close()
    reporter.emit("flushed", backend=backend, pending=pending, refused=refused, outcome=str(outcome))
    if not args.json:
        print(f"{pending} scans still pending for {backend}")
    if refused:
        return int(ExitCode.STOP)
    if outcome is Drain.LOGIN:
        return int(ExitCode.LOGIN)
    return int(ExitCode.QUEUED if pending else ExitCode.OK)


# ----------------------------------------------------------------------------------------- scan


def _source(args: argparse.Namespace) -> Source:
    from scanner.camera import Source, SourceKind

    if args.source:
        return Source(SourceKind.STREAM, args.source)
    if args.video:
        return Source(SourceKind.VIDEO, args.video)
    if args.image:
        return Source(SourceKind.IMAGE, args.image)
    return Source(SourceKind.CAMERA, args.camera or "0")


def _scan_problem(args: argparse.Namespace, site: str | None, backend: str | None) -> str | None:
    """What stops a scanning session before the camera opens, in words for the person at the bench."""
    if not args.mode:
        return "choose a workflow with --mode (" + ", ".join(str(m) for m in Mode) + ")"
    mode = Mode(args.mode)
    if mode in CUSTODY_MODES and not backend:
        return "no backend: use --backend URL or log in with: celltrail scan login"
    if mode in CUSTODY_MODES and not site:
        return f"{mode} needs --site CODE"
    if args.debounce < 0:
        return "--debounce must be >= 0"
    return None


def _scan(args: argparse.Namespace, directory: Path, config: ScannerConfig, backend: str | None) -> int:
    from scanner.camera import SourceError
    from scanner.overlay import Window, display_available, draw
    from scanner.session import Session, SessionOptions

    site = args.site
    if site is None and config.user is not None and len(config.user.sites) == 1:
        site = config.user.sites[0]
    problem = _scan_problem(args, site, backend)
    if problem is not None:
        return _fail(problem)
    options = SessionOptions(
        mode=Mode(args.mode),
        site=site,
        handover_to=args.handover_to,
        storage_location=args.storage_location,
        debounce=args.debounce,
        headless=args.headless,
        sound=not args.no_sound and not args.json,
        once=args.once,
        backend=backend,
        token=_token(config, backend) if backend else None,
        queue_path=directory / QUEUE_FILE,
        send_timeout=args.send_timeout,
        max_side=args.max_side,
    )
    reporter = _reporter(args)
    try:
        session = Session(options, reporter)
    except ValueError as exc:
        return _fail(str(exc))
    window = None if args.headless or not display_available() else Window()

    def show(frame: Frame) -> bool:
        if window is None:
            return True
        items, verdict = session.latest
        return window.show(draw(frame.image, items, verdict))

    try:
        result = session.run(_source(args), on_frame=show)
    except SourceError as exc:
        return _fail(str(exc))
    finally:
        if window is not None:
            window.close()
    return int(result.exit_code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="celltrail scan")
    configure_parser(parser)
    return run(parser.parse_args(argv))
