"""Server-side reading for phones and browsers without a barcode reader of their own: a camera frame in,
what the scanner client would read from it out; and the meaning of codes typed by a keyboard-wedge
scanner. The same decoder and parser as `scanner/`, so a label reads the same everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final

import anyio
import msgspec
from litestar import Request, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from backend.api.schemas import Command
from backend.domain.access import Role, policy
from backend.domain.errors import InvalidInput

if TYPE_CHECKING:
    from scanner.decode import Detection

MAX_FRAME_BYTES: Final = 4 * 1024 * 1024
# Decoding is CPU-bound; a burst of phones must not starve the API's event loop or every core.
_DECODERS: Final = anyio.CapacityLimiter(2)
READERS: Final = tuple(r for r in Role if r is not Role.BRIDGE)


class Decoded(msgspec.Struct, kw_only=True):
    text: str
    symbology: str
    kind: str | None  # coi, unit, shipment, din, sscc, giai, gln, logger; None when not ours
    key: str | None  # one key per thing, whichever symbol carried it (shipment:SHP-2026-000123)
    display: str | None  # what the label's eye-readable line says
    coi: str | None  # the case a wristband or bag belongs to
    problem: str | None  # why the code was not accepted


class DecodeResult(msgspec.Struct, kw_only=True):
    width: int
    height: int
    codes: list[Decoded]


class IdentifyRequest(Command):
    codes: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=500)]],
        msgspec.Meta(min_length=1, max_length=50),
    ]


def _describe(detection: Detection) -> Decoded:
    from celltrail_shared.identifiers import Coi, UnitId
    from scanner.parse import Foreign, Parsed, display_text, identity_key, interpret, kind_of

    meaning = interpret(detection)
    base = {"text": detection.text, "symbology": detection.symbology}
    if isinstance(meaning, Parsed):
        identifier = meaning.identifier
        coi = (
            identifier.value
            if isinstance(identifier, Coi)
            else (identifier.coi.value if isinstance(identifier, UnitId) else None)
        )
        return Decoded(
            **base,
            kind=kind_of(identifier),
            key=identity_key(identifier),
            display=display_text(identifier),
            coi=coi,
            problem=None,
        )
    reason = (
        f"not a Celltrail code: {meaning.reason}"
        if isinstance(meaning, Foreign)
        else f"{meaning.field}: {meaning.reason}"
    )
    return Decoded(**base, kind=None, key=None, display=None, coi=None, problem=reason)


def _decode(image: bytes) -> DecodeResult:
    import cv2  # heavy: loaded on first use, not at import
    import numpy as np

    from scanner.decode import decode

    frame = cv2.imdecode(np.frombuffer(image, dtype=np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise InvalidInput("the frame is not a JPEG, PNG or WebP image")
    codes = [_describe(detection) for detection in decode(frame.astype(np.uint8, copy=False))]
    return DecodeResult(width=int(frame.shape[1]), height=int(frame.shape[0]), codes=codes)


@post(
    "/api/v1/decode",
    opt=policy(*READERS),
    operation_id="decodeFrame",
    tags=["scans"],
    status_code=HTTP_200_OK,
    request_max_body_size=MAX_FRAME_BYTES,
)
async def decode_frame(request: Request[Any, Any, Any]) -> DecodeResult:
    """Read every barcode in one camera frame (body: a JPEG, PNG or WebP image, at most 4 MiB).
    Decoding records nothing: the page then records the custody step with POST /api/v1/scans."""
    body = await request.body()
    if not body:
        raise InvalidInput("send one camera frame as the request body (image/jpeg)")
    return await anyio.to_thread.run_sync(_decode, body, limiter=_DECODERS)


@post(
    "/api/v1/identify",
    opt=policy(*READERS),
    operation_id="identifyCodes",
    tags=["scans"],
    status_code=HTTP_200_OK,
)
async def identify(data: JSONBody[IdentifyRequest]) -> list[Decoded]:
    """What codes typed by a keyboard-wedge scanner are: the same parsing as a decoded frame."""
    from scanner.decode import Detection

    return [
        _describe(Detection(text=text.strip(), symbology="keyboard", polygon=(), decoder="keyboard"))
        for text in data.codes
    ]
