"""The ceiling for the scan API benchmark: a bare Litestar app with one `POST /api/v1/scans` route that
decodes the same JSON body into a typed struct and answers 201 with a body of the same size, served by
uvicorn with exactly the settings `celltrail serve` uses (uvloop, httptools, no access log, one worker).
No middleware, no auth, no database: the gap between this and the real route is our code and its queries.

Bench only; the product never mounts it. ``python -m bench.bare_app --port N``.
"""

from __future__ import annotations

import argparse
import itertools
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Response, post


class _Scan(msgspec.Struct, kw_only=True):
    idempotency_key: Annotated[str, msgspec.Meta(min_length=8, max_length=100)]
    action: str
    site: str
    codes: list[str]
    device_time: datetime | None = None
    storage_location: str | None = None


_ids = itertools.count(1)
_encoder = msgspec.json.Encoder()


@post("/api/v1/scans", status_code=201)
async def scan(data: _Scan) -> Response[bytes]:
    body = {
        "event_id": next(_ids),
        "coi": "CHA999926000001",
        "seq": 1,
        "action": data.action,
        "outcome": "accepted",
        "shipment_id": None,
        "unit_ids": data.codes,
        "shipment_status": None,
        "unit_statuses": {code: "stored" for code in data.codes},
        "message": f"stored {', '.join(data.codes)}",
        "server_time": datetime.now(UTC).isoformat(),
        "hash": "0" * 64,
    }
    return Response(_encoder.encode(body), media_type="application/json", status_code=201)


app = Litestar(route_handlers=[scan], openapi_config=None)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # The same settings as `celltrail serve` (backend/cli.py cmd_serve).
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": args.port,
        "log_config": None,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
    }
    if args.workers > 1:
        # uvicorn's worker supervisor needs the app as an import string.
        uvicorn.run("bench.bare_app:app", workers=args.workers, **settings)
        return
    uvicorn.Server(uvicorn.Config(app, **settings)).run()


if __name__ == "__main__":
    main()
