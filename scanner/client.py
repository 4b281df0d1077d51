"""Every HTTP call the scanner makes to the backend, and what each answer means for the queue.

* 2xx: accepted, final.
* 401: the token is missing, expired or revoked: log in again; the scan stays queued.
* 408, 425, 429 and 5xx, connection errors, timeouts: no answer yet, retry later (these 4xx say
  "not now", not "no").
* Every other 4xx (409/422 refusals with a problem detail, 400, 403, 404, ...): final; the refusal is
  recorded and never retried, since sending the same scan again cannot change the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import msgspec

from scanner.config import User

RETRYABLE_4XX: Final = frozenset({408, 425, 429})
LOGIN_PATH: Final = "/api/v1/auth/login"
SCANS_PATH: Final = "/api/v1/scans"
HEALTH_PATH: Final = "/healthz"
DEFAULT_TIMEOUT: Final = httpx.Timeout(10.0, connect=3.0)


class LoginAnswer(msgspec.Struct, frozen=True):
    token: str
    expires_at: str | None = None
    user: User | None = None


class LoginError(Exception):
    """Login failed; the message says why (wrong password, backend unreachable, ...)."""


@dataclass(frozen=True, slots=True)
class Accepted:
    status: int
    body: bytes
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    body: bytes
    problem: dict[str, Any] = field(default_factory=dict)

    @property
    def detail(self) -> str:
        detail = self.problem.get("detail") or self.problem.get("title")
        return str(detail) if detail else f"HTTP {self.status}"

    @property
    def refusal(self) -> str | None:
        value = self.problem.get("refusal")
        return str(value) if value else None


@dataclass(frozen=True, slots=True)
class Unauthorized:
    status: int
    detail: str


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str
    retry_after: float | None = None


SendResult = Accepted | Refused | Unauthorized | Retry


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify(response: httpx.Response) -> SendResult:
    status = response.status_code
    body = response.content
    if 200 <= status < 300:
        return Accepted(status, body, _json_object(body))
    if status == 401:
        problem = _json_object(body)
        return Unauthorized(status, str(problem.get("detail") or "log in again"))
    if status in RETRYABLE_4XX or status >= 500:
        return Retry(f"HTTP {status}", _retry_after(response))
    if 400 <= status < 500:
        problem = _json_object(body)
        if not problem:
            problem = {"status": status, "detail": body.decode("utf-8", errors="replace")[:300]}
        return Refused(status, body, problem)
    return Retry(f"unexpected HTTP {status}")


class BackendClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BackendClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def login(self, username: str, password: str) -> LoginAnswer:
        try:
            response = self._http.post(LOGIN_PATH, json={"username": username, "password": password})
        except httpx.HTTPError as exc:
            raise LoginError(f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code in (400, 401, 403):
            detail = _json_object(response.content).get("detail") or "wrong username or password"
            raise LoginError(str(detail))
        if not 200 <= response.status_code < 300:
            raise LoginError(f"login failed: HTTP {response.status_code} from {self.base_url}")
        try:
            answer = msgspec.json.decode(response.content, type=LoginAnswer)
        except msgspec.ValidationError as exc:
            raise LoginError(f"unexpected login answer from {self.base_url}: {exc}") from exc
        self.token = answer.token
        return answer

    def send_scan(self, body: bytes) -> SendResult:
        """POST one scan exactly as queued (``body`` is JSON carrying its idempotency key)."""
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        try:
            response = self._http.post(SCANS_PATH, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return Retry(f"timeout: {exc.__class__.__name__}")
        except httpx.HTTPError as exc:
            return Retry(f"backend unreachable: {exc}")
        return classify(response)

    def healthy(self) -> bool:
        try:
            return self._http.get(HEALTH_PATH).status_code == 200
        except httpx.HTTPError:
            return False
