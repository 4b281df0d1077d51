"""The HTTP client against the stand-in backend: what every kind of answer means."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from scanner_standin import Refusal, Running, StandIn

from scanner.client import (
    Accepted,
    BackendClient,
    LoginError,
    Refused,
    Retry,
    Unauthorized,
    classify,
)


@pytest.fixture
def backend() -> Iterator[Running]:
    running = Running(StandIn(users={"courier": "pw-courier-1"}))
    yield running
    running.stop()


def _body(key: str = "key-00000001", codes: list[str] | None = None, **extra: Any) -> bytes:
    body = {
        "idempotency_key": key,
        "action": "pickup",
        "site": "CRX-ZRH",
        "codes": codes or ["SHP-2026-000123"],
        "device_time": "2026-03-01T10:00:00.000Z",
        "gps": None,
        "handover_to": None,
        "storage_location": None,
        "reason": None,
        **extra,
    }
    return json.dumps(body).encode()


def _logged_in(backend: Running) -> BackendClient:
    client = BackendClient(backend.url)
    client.login("courier", "pw-courier-1")
    return client


def test_login_returns_the_token_and_user(backend: Running) -> None:
    with BackendClient(backend.url) as client:
        answer = client.login("courier", "pw-courier-1")
    assert answer.token in backend.standin.tokens
    assert answer.user is not None
    assert answer.user.sites == ["CRX-ZRH"]


def test_a_wrong_password_is_a_login_error(backend: Running) -> None:
    with BackendClient(backend.url) as client, pytest.raises(LoginError, match="wrong username or password"):
        client.login("courier", "nope")


def test_an_accepted_scan_and_its_repeat_get_the_same_answer(backend: Running) -> None:
    with _logged_in(backend) as client:
        first = client.send_scan(_body())
        again = client.send_scan(_body(codes=["SHP-2026-999999"]))  # same key: the first answer
    assert isinstance(first, Accepted)
    assert first.status == 201
    assert first.data["outcome"] == "accepted"
    assert again == first
    assert len(backend.standin.events) == 1


def test_a_refusal_is_final_with_its_problem_detail(backend: Running) -> None:
    backend.standin.refuse["SHP-2026-000666"] = Refusal(409, "out_of_order", "shipment was not picked up")
    with _logged_in(backend) as client:
        result = client.send_scan(_body(codes=["SHP-2026-000666"]))
        invalid = client.send_scan(_body(key="key-00000002", action="teleport"))
    assert isinstance(result, Refused)
    assert result.status == 409
    assert result.refusal == "out_of_order"
    assert result.detail == "shipment was not picked up"
    assert isinstance(invalid, Refused)
    assert invalid.status == 422
    assert "unknown action" in invalid.detail


def test_a_missing_or_bad_token_means_log_in_again(backend: Running) -> None:
    with BackendClient(backend.url, token="stale") as client:
        result = client.send_scan(_body())
    assert isinstance(result, Unauthorized)
    assert backend.standin.events == []


def test_server_errors_and_no_answer_mean_retry(backend: Running) -> None:
    backend.standin.fail_next = 1
    with _logged_in(backend) as client:
        assert client.send_scan(_body()) == Retry("HTTP 503")
        backend.standin.drop_next = 1
        dropped = client.send_scan(_body(key="key-00000002"))
    assert isinstance(dropped, Retry)
    assert [e["idempotency_key"] for e in backend.standin.events] == ["key-00000002"]  # recorded anyway


def test_an_unreachable_backend_means_retry() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with BackendClient(f"http://127.0.0.1:{port}", token="t") as client:
        result = client.send_scan(_body())
        assert isinstance(result, Retry)
        assert "unreachable" in result.reason
        assert not client.healthy()


def test_a_timeout_means_retry() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    with BackendClient("http://backend.test", token="t", transport=httpx.MockTransport(hang)) as client:
        result = client.send_scan(_body())
    assert isinstance(result, Retry)
    assert "timeout" in result.reason


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"retry-after": "7"}, Retry("HTTP 429", 7.0)),
        (408, {}, Retry("HTTP 408")),
        (502, {}, Retry("HTTP 502")),
        (302, {}, Retry("unexpected HTTP 302")),
    ],
)
def test_answers_that_say_not_now_are_retried(status: int, headers: dict[str, str], expected: Retry) -> None:
    assert classify(httpx.Response(status, headers=headers)) == expected


def test_other_client_errors_are_final_even_without_a_problem_body() -> None:
    result = classify(httpx.Response(403, text="forbidden at this site"))
    assert isinstance(result, Refused)
    assert result.detail == "forbidden at this site"
    assert result.refusal is None


def test_health(backend: Running) -> None:
    with BackendClient(backend.url) as client:
        assert client.healthy()
