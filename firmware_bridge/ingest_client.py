"""HTTP client for the backend's ingest endpoint: authenticate, post one encoded batch, classify the answer.

Authentication is the service account's API key (`Authorization: Bearer ctk_...`, no sign-in, so the
backend's sign-in throttle never stalls the readings) or, the older way, a username and password
exchanged for a token at the sign-in endpoint.

The classification is the whole point: STORED (200, durably committed), RETRY (the backend is down,
slow, restarting or the credentials are being fixed: keep the batch), REJECT (400/413/422: this batch
can never succeed, set it aside for review). A 401 means the token expired: log in again and resend once
(with an API key a 401 means the key was revoked: the batch waits until an operator sets a new one).
The key, token and password are never logged.
"""

from __future__ import annotations

import enum
import logging
from typing import NamedTuple, Protocol

import httpx
import msgspec

from firmware_bridge.ingest_contract import (
    CONTENT_TYPE,
    INGEST_PATH,
    LOGIN_PATH,
    IngestResult,
    decode_result,
)

log = logging.getLogger(__name__)

REJECT_STATUSES = frozenset({400, 413, 415, 422})


class Outcome(enum.Enum):
    STORED = "stored"
    RETRY = "retry"
    REJECT = "reject"


class SendResult(NamedTuple):
    outcome: Outcome
    detail: str
    result: IngestResult | None = None


class BatchSender(Protocol):
    """Anything that can deliver an encoded IngestBatch: the HTTP client, or an in-process sink."""

    def send(self, body: bytes) -> SendResult: ...

    def close(self) -> None: ...


class _LoginResponse(msgspec.Struct):
    token: str


_login_decoder = msgspec.json.Decoder(_LoginResponse)


class IngestClient:
    def __init__(
        self,
        backend_url: str,
        username: str | None,
        password: str | None,
        timeout_s: float,
        transport: httpx.BaseTransport | None = None,
        *,
        api_key: str | None = None,
    ) -> None:
        # An API key wins: no sign-in at all.
        self._username = username if api_key is None else None
        self._password = password
        self._token: str | None = api_key
        self._key_refused = False
        self._http = httpx.Client(base_url=backend_url, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def send(self, body: bytes) -> SendResult:
        try:
            if self._username is not None and self._token is None:
                failure = self._login()
                if failure is not None:
                    return failure
            response = self._post(body)
            if response.status_code == 401 and self._username is not None:
                self._token = None
                failure = self._login()
                if failure is not None:
                    return failure
                response = self._post(body)
        except httpx.HTTPError as exc:
            return SendResult(Outcome.RETRY, f"backend unreachable: {type(exc).__name__}: {exc}")
        if response.status_code == 401 and self._username is None and self._token is not None:
            if not self._key_refused:  # once, not for every retry of every batch
                log.error("backend refused the API key (revoked or unknown): HTTP 401; set a new one")
            self._key_refused = True
            return SendResult(Outcome.RETRY, "API key refused: HTTP 401")
        self._key_refused = False
        return self._classify(response)

    def _post(self, body: bytes) -> httpx.Response:
        headers = {"Content-Type": CONTENT_TYPE, "Accept": f"{CONTENT_TYPE}, application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        return self._http.post(INGEST_PATH, content=body, headers=headers)

    def _login(self) -> SendResult | None:
        response = self._http.post(LOGIN_PATH, json={"username": self._username, "password": self._password})
        if response.status_code != 200:
            # Wrong credentials are an operator's problem to fix; the data waits on disk meanwhile.
            log.error("backend login as %r refused: HTTP %d", self._username, response.status_code)
            return SendResult(Outcome.RETRY, f"login refused: HTTP {response.status_code}")
        try:
            self._token = _login_decoder.decode(response.content).token
        except msgspec.DecodeError:
            return SendResult(Outcome.RETRY, "login answer without a token")
        return None

    @staticmethod
    def _classify(response: httpx.Response) -> SendResult:
        status = response.status_code
        if status == 200:
            try:
                result = decode_result(response.content, response.headers.get("content-type", ""))
            except msgspec.DecodeError:
                # 200 means committed; an answer we cannot read does not undo that.
                log.warning("backend stored a batch but its answer was unreadable")
                result = None
            return SendResult(Outcome.STORED, "HTTP 200", result)
        text = response.text[:500]
        if status in REJECT_STATUSES:
            return SendResult(Outcome.REJECT, f"HTTP {status}: {text}")
        return SendResult(Outcome.RETRY, f"HTTP {status}: {text}")
