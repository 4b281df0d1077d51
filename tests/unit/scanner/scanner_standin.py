"""A stand-in for the backend's scanner API, for the scanner's tests only.

It implements the contract the scanner is built against: ``POST /api/v1/auth/login``, ``GET /healthz``
and ``POST /api/v1/scans`` with idempotency (a repeated key gets the first status and body back,
whatever the new body says), 409/422 problem+json refusals and 401 for a bad token. Faults are switched
on per test: answer 503 to the next N scan requests, or record the next N scans and then drop the
connection without answering (a crash between the backend's commit and the client's receipt).

State is kept in memory and, when ``state_path`` is given, in a JSON file rewritten after every change,
so a stand-in started again on the same file remembers every key, like the real backend's database.
Run as a program (``python scanner_standin.py --port N --state FILE --user NAME:PASSWORD``) it serves
until killed and takes the same switches on ``POST /_control``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ACTIONS = {"pickup", "handover", "receive", "store", "pack", "label", "dispense", "thaw", "infuse", "dispose"}


@dataclass
class Refusal:
    status: int
    refusal: str
    detail: str


@dataclass
class StandIn:
    users: dict[str, str] = field(default_factory=lambda: {"courier": "courier-password"})
    sites: list[str] = field(default_factory=lambda: ["CRX-ZRH"])
    state_path: Path | None = None
    refuse: dict[str, Refusal] = field(default_factory=dict)  # a code in "codes" -> refusal
    fail_next: int = 0  # answer 503 to this many scan requests
    drop_next: int = 0  # record this many scans, then close the connection without an answer
    attempts: list[dict[str, Any]] = field(default_factory=list)  # every scan request received
    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # key -> first answer
    events: list[dict[str, Any]] = field(default_factory=list)  # recorded scans, in order, once each
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.state_path is not None and self.state_path.exists():
            saved = json.loads(self.state_path.read_text())
            self.answers = {key: (status, body) for key, (status, body) in saved["answers"].items()}
            self.events = saved["events"]
            self.tokens = set(saved["tokens"])

    def _save(self) -> None:
        if self.state_path is None:
            return
        data = {"answers": self.answers, "events": self.events, "tokens": sorted(self.tokens)}
        temporary = self.state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data))
        temporary.replace(self.state_path)

    def login(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        username = body.get("username")
        if not isinstance(username, str) or self.users.get(username) != body.get("password"):
            return 401, _problem(401, "invalid credentials", "wrong username or password")
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
            self._save()
        user = {
            "username": username,
            "full_name": username.title(),
            "roles": ["courier"],
            "sites": self.sites,
        }
        return 200, {"token": token, "expires_at": "2099-01-01T00:00:00Z", "user": user}

    def scan(self, token: str | None, body: Any) -> tuple[int, dict[str, Any], bool]:
        """(status, body, drop): ``drop`` means close the connection instead of answering."""
        with self.lock:
            self.attempts.append(body if isinstance(body, dict) else {"invalid": body})
            if token not in self.tokens:
                return 401, _problem(401, "unauthorized", "log in again"), False
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503, _problem(503, "unavailable", "try again later"), False
            problem = _invalid(body)
            if problem is not None:
                return 422, problem, False
            key = body["idempotency_key"]
            if key in self.answers:
                status, answer = self.answers[key]
                return status, answer, False
            status, answer = self._decide(body)
            self.answers[key] = (status, answer)
            self._save()
            drop = self.drop_next > 0
            self.drop_next -= int(drop)
            return status, answer, drop

    def _decide(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        refusal = next((self.refuse[code] for code in body["codes"] if code in self.refuse), None)
        event_id = len(self.events) + 1
        if refusal is not None:
            problem = _problem(refusal.status, "refused", refusal.detail)
            problem.update(refusal=refusal.refusal, event_id=event_id, errors=[])
            self.events.append({**body, "event_id": event_id, "outcome": "refused"})
            return refusal.status, problem
        self.events.append({**body, "event_id": event_id, "outcome": "accepted"})
        answer = {
            "event_id": event_id,
            "coi": "CHG123426A1B2C3",
            "seq": event_id,
            "action": body["action"],
            "outcome": "accepted",
            "shipment_id": None,
            "unit_ids": [],
            "shipment_status": None,
            "unit_statuses": {},
            "message": f"{body['action']} recorded",
            "server_time": datetime.now(UTC).isoformat(),
            "hash": secrets.token_hex(32),
        }
        return 201, answer

    def accepted_keys(self) -> list[str]:
        with self.lock:
            return [event["idempotency_key"] for event in self.events if event["outcome"] == "accepted"]

    def control(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.fail_next = int(body.get("fail_next", self.fail_next))
            self.drop_next = int(body.get("drop_next", self.drop_next))
            for code, spec in body.get("refuse", {}).items():
                self.refuse[code] = Refusal(int(spec["status"]), spec["refusal"], spec["detail"])


def _problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


def _invalid(body: Any) -> dict[str, Any] | None:
    errors: list[str] = []
    if not isinstance(body, dict):
        errors.append("body must be a JSON object")
    else:
        key = body.get("idempotency_key")
        if not isinstance(key, str) or not 8 <= len(key) <= 100:
            errors.append("idempotency_key must be 8-100 characters")
        if body.get("action") not in ACTIONS:
            errors.append("unknown action")
        codes = body.get("codes")
        if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
            errors.append("codes must be a non-empty list of strings")
        if not isinstance(body.get("site"), str):
            errors.append("site is required")
        if not isinstance(body.get("device_time"), str) or not body["device_time"].endswith("Z"):
            errors.append("device_time must be RFC 3339 UTC")
    if not errors:
        return None
    problem = _problem(422, "invalid scan", "; ".join(errors))
    problem["errors"] = errors
    return problem


def make_server(standin: StandIn, port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any], problem: bool = False) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            kind = "application/problem+json" if problem or status >= 400 else "application/json"
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("content-length", "0"))
            try:
                return json.loads(self.rfile.read(length) or b"null")
            except json.JSONDecodeError:
                return None

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._reply(200, {"status": "ok"})
            elif self.path == "/_state":
                with standin.lock:
                    self._reply(200, {"events": standin.events, "attempts": standin.attempts})
            else:
                self._reply(404, _problem(404, "not found", self.path))

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/api/v1/auth/login":
                self._reply(*standin.login(body if isinstance(body, dict) else {}))
            elif self.path == "/api/v1/scans":
                auth = self.headers.get("authorization", "")
                token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
                status, answer, drop = standin.scan(token, body)
                if drop:
                    self.close_connection = True
                    return
                self._reply(status, answer)
            elif self.path == "/_control":
                standin.control(body if isinstance(body, dict) else {})
                self._reply(200, {"ok": True})
            else:
                self._reply(404, _problem(404, "not found", self.path))

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


class Running:
    """A stand-in served from a thread: ``url``, ``standin`` and ``stop()``."""

    def __init__(self, standin: StandIn, port: int = 0) -> None:
        self.standin = standin
        self.server = make_server(standin, port)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD")
    args = parser.parse_args()
    users = dict(user.split(":", 1) for user in args.user) or {"courier": "courier-password"}
    server = make_server(StandIn(users=users, state_path=args.state), args.port)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
