"""Writing and reading external checkpoints (backend/domain/checkpoint.py): on a schedule from the
housekeeping loop, on demand from `celltrail checkpoint`, into an append-only directory. A file is
written once, 0600, under a name no other file has (created with O_EXCL), and never rewritten.

With CELLTRAIL_TSA_URL set, an RFC 3161 time-stamping authority also signs the checkpoint's SHA-256;
its reply is kept beside the checkpoint (`<name>.tsr`, DER). Anyone can check it with
`openssl ts -verify -data <name>.json -in <name>.tsr -CAfile <the TSA's CA>`; the authority, not this
server, vouches that the checkpoint existed at that time."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
from asn1crypto import tsp

from backend.db.repo import cases as case_repo
from backend.db.repo import events
from backend.db.types import Conn, Pool
from backend.domain import checkpoint
from backend.domain.keyring import Keyring
from backend.private_files import FILE_MODE, private_directory

log = logging.getLogger(__name__)
TSA_TIMEOUT_SECONDS = 20.0
_SUFFIX = ".json"


class CheckpointError(RuntimeError):
    """A checkpoint that could not be written or time-stamped; the message says why."""


class Written(msgspec.Struct, frozen=True):
    path: str
    cases: int
    merkle_root: str
    created_at: datetime
    timestamp_path: str | None


def names(directory: Path, record_id: str | None = None) -> list[str]:
    """Checkpoint files (of one record), oldest first (names start with their UTC time and carry the
    record id's first characters)."""
    try:
        found = sorted(p.name for p in directory.iterdir() if p.name.endswith(_SUFFIX))
    except FileNotFoundError:
        return []
    if record_id is None:
        return found
    return [name for name in found if f"-{record_id[:8]}-" in name]


def latest(directory: Path, record_id: str) -> tuple[str, checkpoint.Checkpoint] | None:
    """The newest readable checkpoint of this record (an unreadable file is skipped and logged)."""
    for name in reversed(names(directory, record_id)):
        try:
            found = checkpoint.decode((directory / name).read_bytes())
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            log.warning("a checkpoint file cannot be read; using the one before", extra={"file": name})
            continue
        if found.body.record_id == record_id:
            return name, found
    return None


async def latest_for(conn: Conn, directory: Path) -> tuple[str, checkpoint.Checkpoint] | None:
    """The newest checkpoint of the record `conn` holds."""
    record_id, _ceiling = await events.record_identity(conn)
    return latest(directory, record_id)


def _write_once(path: Path, data: bytes) -> None:
    """Write a complete file under a name that did not exist: written to a temporary name, then linked
    (link fails rather than replacing an existing file), so a checkpoint is never half written or
    overwritten."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with open(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def timestamp_request(digest: bytes, nonce: int) -> bytes:
    request: bytes = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
            "nonce": nonce,
            "cert_req": True,
        }
    ).dump()
    return request


def check_timestamp_reply(reply: bytes, digest: bytes, nonce: int) -> None:
    """The reply grants a token over exactly this digest and nonce (the token's signature is the
    authority's, checked by whoever relies on it with the authority's certificate)."""
    try:
        response = tsp.TimeStampResp.load(reply)
        status = response["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            raise CheckpointError(f"the time-stamping authority refused the request ({status})")
        info = response["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
        imprint = info["message_imprint"]["hashed_message"].native
        returned_nonce = info["nonce"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"the time-stamping authority's reply cannot be read ({exc})") from None
    if imprint != digest or returned_nonce != nonce:
        raise CheckpointError("the time-stamping authority's token is for other data")


async def fetch_timestamp(url: str, digest: bytes) -> bytes:
    nonce = secrets.randbits(63)
    try:
        async with httpx.AsyncClient(timeout=TSA_TIMEOUT_SECONDS) as client:
            response = await client.post(
                url,
                content=timestamp_request(digest, nonce),
                headers={"Content-Type": "application/timestamp-query"},
            )
    except httpx.HTTPError as exc:
        raise CheckpointError(f"the time-stamping authority cannot be reached ({exc})") from None
    if response.status_code != 200:
        raise CheckpointError(f"the time-stamping authority answered HTTP {response.status_code}")
    check_timestamp_reply(response.content, digest, nonce)
    return response.content


async def write(pool: Pool, keyring: Keyring, directory: Path, tsa_url: str | None = None) -> Written:
    key = keyring.current
    if key is None:
        raise CheckpointError("no record key: a checkpoint cannot be signed")
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await case_repo.heads(conn)
        record_id, ceiling = await events.record_identity(conn)
    heads = [checkpoint.Head(coi, length, link.hex()) for coi, length, link in rows]
    now = datetime.now(UTC)
    made = checkpoint.make(key, record_id, now, ceiling, heads)
    data = checkpoint.encode(made)
    private_directory(directory)
    when = now.strftime("%Y%m%dT%H%M%S.%fZ")
    name = f"checkpoint-{when}-{record_id[:8]}-{secrets.token_hex(3)}{_SUFFIX}"
    path = directory / name
    _write_once(path, data)
    stamp_path = None
    if tsa_url:
        token = await fetch_timestamp(tsa_url, hashlib.sha256(data).digest())
        stamp = path.with_suffix(".tsr")
        _write_once(stamp, token)
        stamp_path = str(stamp)
    log.info("checkpoint written", extra={"file": name, "cases": len(heads)})
    return Written(str(path), len(heads), made.body.merkle_root, now, stamp_path)


async def write_if_due(
    pool: Pool, keyring: Keyring, directory: Path, minutes: float, tsa_url: str | None
) -> bool:
    """The scheduled checkpoint: written when this record's newest is older than `minutes` (or there is
    none). Several replicas may each write one in the same minute: harmless, each is complete and
    signed."""
    async with pool.acquire() as conn:
        newest = await latest_for(conn, directory)
    if newest is not None:
        age = datetime.now(UTC) - newest[1].body.created_at
        if age.total_seconds() < minutes * 60:
            return False
    await write(pool, keyring, directory, tsa_url)
    return True
