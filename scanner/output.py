"""What the operator and automation read: one terminal line per event, or one JSON object per line."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec

_LEVEL_TAGS = {"ok": "OK   ", "stop": "STOP ", "wait": "WAIT ", "info": "     "}


def _human(event: dict[str, Any]) -> str | None:
    kind = event["event"]
    where = f" [frame {event['frame']}, {event['t']:.2f}s]" if "frame" in event else ""
    match kind:
        case "verdict":
            detail = f" ({event['detail']})" if event.get("detail") else ""
            return f"{_LEVEL_TAGS.get(event['level'], '')}{event['message']}{detail}"
        case "code":
            return f"  read {event['kind']} {event['display']} ({event['symbology']}){where}"
        case "rejected":
            return f"  rejected {event['text']!r}: {event['reason']}{where}"
        case "ignored":
            return f"  ignored {event['text'][:40]!r}: not a Celltrail code{where}"
        case "queued":
            return f"  saved {event['action']} {event['subject']} ({event['idempotency_key'][:8]})"
        case "start":
            return f"scanning {event['source']} in {event['mode']} mode (q or Ctrl-C to stop)"
        case "end":
            return f"done: {event['frames']} frames, exit status {event['exit_code']}"
    return None


class Reporter:
    """Thread-safe event sink; keeps every event for the caller (tests, the exit summary)."""

    def __init__(
        self, stream: TextIO | None = None, *, json_lines: bool = False, quiet: bool = False
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.json_lines = json_lines
        self.quiet = quiet
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def emit(self, event_type: str, /, **fields: Any) -> dict[str, Any]:
        event = {"event": event_type, "time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
        with self._lock:
            self.events.append(event)
            if self.quiet:
                return event
            if self.json_lines:
                self.stream.write(msgspec.json.encode(event).decode() + "\n")
            else:
                line = _human(event)
                if line is None:
                    return event
                self.stream.write(line + "\n")
            self.stream.flush()
        return event

    def of(self, event_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [event for event in self.events if event["event"] == event_type]
