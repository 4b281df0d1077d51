"""The ingest contract's wire format and the HTTP client's reading of the backend's answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import msgspec
import pytest

from firmware_bridge import ingest_contract as contract
from firmware_bridge.ingest_client import IngestClient, Outcome

T0 = datetime(2026, 3, 1, 11, 58, tzinfo=UTC)


def batch() -> contract.IngestBatch:
    return contract.IngestBatch(
        batch_id="b1",
        bridge_id="bridge-a",
        readings=[
            contract.IngestReading(
                logger_id="LGR-0001",
                ts=T0,
                temp_c=4.87,
                battery_pct=87,
                lid_open=False,
                seq=5,
                received_at=T0,
            )
        ],
        statuses=[contract.LoggerStatus(logger_id="LGR-0001", online=True, ts=T0, received_at=T0)],
        dead_letters=[
            contract.DeadLetter(
                topic="celltrail/v1/loggers/LGR-0001/telemetry",
                payload=b"\x00{",
                kind="malformed",
                reason="not JSON",
                received_at=T0,
                logger_id="LGR-0001",
            )
        ],
    )


def test_batch_round_trip_keeps_utc_datetimes_and_bytes():
    decoded = contract.decode_batch(contract.encode_batch(batch()))
    assert decoded == batch()
    assert decoded.readings[0].ts.tzinfo is not None
    assert decoded.dead_letters[0].payload == b"\x00{"


def test_the_backend_can_read_it_without_our_structs():
    # A plain msgpack reader sees a map with these keys; datetimes are msgpack timestamps.
    raw = msgspec.msgpack.decode(contract.encode_batch(batch()))
    assert set(raw) == {"batch_id", "bridge_id", "readings", "statuses", "dead_letters"}
    assert set(raw["readings"][0]) == {
        "logger_id",
        "ts",
        "temp_c",
        "battery_pct",
        "lid_open",
        "seq",
        "low_battery",
        "received_at",
    }


def test_decoding_refuses_naive_datetimes_and_bad_ids():
    bad = msgspec.msgpack.encode(
        {
            "batch_id": "b",
            "bridge_id": "x",
            "readings": [{"logger_id": "nope", "ts": T0, "temp_c": 1.0, "received_at": T0}],
        }
    )
    with pytest.raises(msgspec.ValidationError):
        contract.decode_batch(bad)


class Backend:
    """A scripted backend behind httpx.MockTransport."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.logins = 0
        self.posts: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == contract.LOGIN_PATH:
            self.logins += 1
            assert json.loads(request.content) == {"username": "svc", "password": "s3cr3t-pw"}
            return httpx.Response(200, json={"token": f"tok{self.logins}"})
        self.posts.append(request)
        status = self.answers.pop(0)
        if status == 200:
            result = contract.encode_result(contract.IngestResult(stored=1, duplicates=0, dead_lettered=1))
            return httpx.Response(200, content=result, headers={"Content-Type": contract.CONTENT_TYPE})
        if status == -1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(status, text="nope")


def client(backend: Backend) -> IngestClient:
    return IngestClient("http://backend", "svc", "s3cr3t-pw", 5.0, transport=httpx.MockTransport(backend))


def test_stored():
    backend = Backend([200])
    result = client(backend).send(b"body")
    assert result.outcome is Outcome.STORED
    assert result.result == contract.IngestResult(stored=1, duplicates=0, dead_lettered=1)
    (post,) = backend.posts
    assert post.headers["Content-Type"] == "application/msgpack"
    assert post.headers["Authorization"] == "Bearer tok1"
    assert post.content == b"body"


def test_401_logs_in_again_and_resends():
    backend = Backend([200, 401, 200])
    sender = client(backend)
    assert sender.send(b"1").outcome is Outcome.STORED
    assert sender.send(b"2").outcome is Outcome.STORED
    assert backend.logins == 2
    assert backend.posts[-1].headers["Authorization"] == "Bearer tok2"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (400, Outcome.REJECT),
        (413, Outcome.REJECT),
        (422, Outcome.REJECT),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
        (404, Outcome.RETRY),
        (429, Outcome.RETRY),
        (-1, Outcome.RETRY),
    ],
)
def test_classification(status, outcome):
    assert client(Backend([status])).send(b"x").outcome is outcome


def test_json_answers_are_understood_too():
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"stored": 3, "duplicates": 1, "dead_lettered": 0})

    sender = IngestClient("http://backend", None, None, 5.0, transport=httpx.MockTransport(answer))
    assert sender.send(b"x").result == contract.IngestResult(stored=3, duplicates=1, dead_lettered=0)


def test_token_and_password_stay_out_of_logs(caplog):
    caplog.set_level("DEBUG")
    backend = Backend([401, 401])
    client(backend).send(b"x")
    assert "tok1" not in caplog.text
    assert "s3cr3t" not in caplog.text


KEY = "ctk_the-bridge-s-api-key-0123456789abcdefghijkl"


def test_an_api_key_is_sent_as_is_without_any_login(caplog):
    caplog.set_level("DEBUG")
    backend = Backend([200, 401, 401, 200])
    sender = IngestClient(
        "http://backend", "svc", "s3cr3t-pw", 5.0, transport=httpx.MockTransport(backend), api_key=KEY
    )
    assert sender.send(b"1").outcome is Outcome.STORED
    # A refused key (revoked) is not retried with a sign-in: the batch waits, logged once.
    assert sender.send(b"2").outcome is Outcome.RETRY
    assert sender.send(b"2").outcome is Outcome.RETRY
    assert sender.send(b"2").outcome is Outcome.STORED
    assert backend.logins == 0
    assert {post.headers["Authorization"] for post in backend.posts} == {f"Bearer {KEY}"}
    assert caplog.text.count("refused the API key") == 1
    assert KEY not in caplog.text
    assert KEY[4:] not in caplog.text
