"""The files of the readings archive (issue 26): one Parquet file per month of readings and, beside it,
its manifest (SHA-256 of the file, row count, time range, logger ids), MACed with the record key exactly
as the checkpoints are (backend/domain/checkpoint.py), under a label of its own so that a manifest can
never pass for a checkpoint or the other way round.

A file is written under a temporary name, fsynced, linked to its final name (never replacing a file)
and its directory fsynced; then it is read back whole and its checksum and rows compared with what was
written. Only a file that passed that is named in the database (backend/services/archive.py)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from backend.domain.keyring import Keyring, RecordKey
from backend.private_files import FILE_MODE, private_directory

FORMAT = "celltrail-readings-archive/1"
_MAC_LABEL = b"celltrail readings archive v1\n"
MANIFEST_SUFFIX = ".manifest.json"
# The readings table's columns, in its order and with its types (real is float32, smallint int16).
SCHEMA = pa.schema(
    [
        pa.field("logger_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("temp_c", pa.float32(), nullable=False),
        pa.field("battery_pct", pa.int16()),
        pa.field("lid_open", pa.bool_()),
        pa.field("shipment_id", pa.string()),
        pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("stored_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
COLUMNS = tuple(SCHEMA.names)
_TIMES = ("ts", "received_at", "stored_at")
# Rows sorted by (logger_id, ts) in groups of this many: a leg's look-up reads only the groups whose
# statistics can hold its logger and window.
ROW_GROUP = 65_536
_HASH_CHUNK = 1 << 20

_encoder = msgspec.json.Encoder(order="deterministic")


class ArchiveFileError(RuntimeError):
    """An archive file or manifest that cannot be written, read or trusted; the message says which and
    why (never a key)."""


class ManifestBody(msgspec.Struct, frozen=True):
    format: str
    record_id: str
    range_from: datetime
    range_until: datetime
    file: str
    sha256: str
    bytes: int
    rows: int
    first_ts: datetime | None
    last_ts: datetime | None
    logger_ids: list[str]
    created_at: datetime
    key_id: str


class Manifest(msgspec.Struct, frozen=True):
    body: ManifestBody
    mac: str


def sign(key: RecordKey, body: ManifestBody) -> Manifest:
    return Manifest(body, key.mac(_MAC_LABEL, _encoder.encode(body)).hex())


def authenticity(manifest: Manifest, keyring: Keyring) -> str:
    """'authentic', 'forged' or 'unverifiable' (the key that signed it is not in the keyring)."""
    key = keyring.get(manifest.body.key_id)
    if key is None:
        return "unverifiable"
    expected = key.mac(_MAC_LABEL, _encoder.encode(manifest.body)).hex()
    return "authentic" if hmac.compare_digest(expected, manifest.mac) else "forged"


def encode_manifest(manifest: Manifest) -> bytes:
    return _encoder.encode(manifest) + b"\n"


def read_manifest(path: Path) -> Manifest:
    try:
        return msgspec.json.decode(path.read_bytes(), type=Manifest)
    except OSError as exc:
        raise ArchiveFileError(f"the manifest {path} cannot be read ({exc.strerror})") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ArchiveFileError(f"the manifest {path} is not an archive manifest ({exc})") from None


def manifest_path(data_path: Path) -> Path:
    return data_path.with_name(data_path.name + MANIFEST_SUFFIX)


def absolute(path: Path | str) -> Path:
    """Made absolute without resolving links (a no-I/O helper async callers can use)."""
    return Path(os.path.abspath(path))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")


def _publish(partial: Path, path: Path) -> None:
    """The complete, fsynced temporary file under its final name; link fails rather than replace."""
    os.link(partial, path)
    partial.unlink()
    _fsync_directory(path.parent)


def write_once(path: Path, data: bytes) -> None:
    partial = _partial(path)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with open(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class Written(msgspec.Struct, frozen=True):
    rows: int
    sha256: str
    bytes: int
    first_ts: datetime | None
    last_ts: datetime | None
    logger_ids: list[str]


class MonthWriter:
    """Writes rows (tuples in COLUMNS order, sorted by logger_id and ts) to `path`, zstd-compressed,
    batch by batch; `finish` publishes the file and verifies it: read back whole, its rows counted and
    hashed against what was written. `abort` removes whatever an unfinished writer left."""

    def __init__(self, path: Path) -> None:
        private_directory(path.parent)
        self.path = path
        self._partial = _partial(path)
        self._rows = 0
        self._first: datetime | None = None
        self._last: datetime | None = None
        self._loggers: set[str] = set()
        fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        self._handle = open(fd, "wb")  # noqa: SIM115 - closed by finish or abort
        self._writer = pq.ParquetWriter(
            self._handle,
            SCHEMA,
            compression="zstd",
            compression_level=9,
            # Times sorted within a logger differ by about one sample interval from row to row: stored
            # as differences they take a few bits each instead of eight bytes (a column cannot both be
            # dictionary-encoded and have an encoding of its own, hence the list of the others).
            use_dictionary=[c for c in COLUMNS if c not in _TIMES],
            column_encoding=dict.fromkeys(_TIMES, "DELTA_BINARY_PACKED"),
        )

    def write(self, batch: list[tuple[Any, ...]]) -> None:
        if not batch:
            return
        columns = list(zip(*batch, strict=True))
        table = pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, SCHEMA, strict=True)], schema=SCHEMA
        )
        self._writer.write_table(table, row_group_size=ROW_GROUP)
        self._rows += len(batch)
        self._loggers.update(columns[0])
        first, last = min(columns[1]), max(columns[1])
        self._first = first if self._first is None else min(self._first, first)
        self._last = last if self._last is None else max(self._last, last)

    def finish(self) -> Written:
        self._writer.close()
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        written_sha = sha256_of(self._partial)
        _publish(self._partial, self.path)
        # Read back under its final name: what is named in the database is what was checked here.
        if sha256_of(self.path) != written_sha or read_table(self.path).num_rows != self._rows:
            self.path.unlink(missing_ok=True)
            raise ArchiveFileError(f"{self.path} does not read back as written")
        size = self.path.stat().st_size
        return Written(self._rows, written_sha, size, self._first, self._last, sorted(self._loggers))

    def abort(self) -> None:
        if not self._handle.closed:
            with contextlib.suppress(OSError, pa.ArrowException):
                self._writer.close()
            self._handle.close()
        self._partial.unlink(missing_ok=True)


def read_table(source: Path | bytes, filters: list[tuple[str, str, Any]] | None = None) -> pa.Table:
    """A file, or the bytes of one already checked (`load_checked`), as a table."""
    name = source if isinstance(source, Path) else "checked in memory"
    try:
        reader = source if isinstance(source, Path) else pa.BufferReader(source)
        table: pa.Table = pq.read_table(reader, schema=SCHEMA, filters=filters)
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveFileError(f"the archive file ({name}) cannot be read ({exc})") from None
    return table


def load_checked(
    data_path: Path, keyring: Keyring, record_id: str, sha256: str | None = None
) -> tuple[Manifest, bytes]:
    """The manifest of `data_path` and the file's bytes, after checking the manifest's MAC, that it
    belongs to this record and names this file, and that the bytes match its SHA-256 (and `sha256`,
    what the database expects, when given). The bytes are read once and used from memory: a file
    changed after the check cannot be what is then read."""
    manifest = read_manifest(manifest_path(data_path))
    body = manifest.body
    verdict = authenticity(manifest, keyring)
    if verdict == "unverifiable":
        raise ArchiveFileError(
            f"the manifest of {data_path.name} was signed with record key {body.key_id}, which is not in "
            "the keyring: it cannot be verified"
        )
    if verdict != "authentic":
        raise ArchiveFileError(f"the manifest of {data_path.name} is not authentic: its signature fails")
    if body.format != FORMAT or body.record_id != record_id:
        raise ArchiveFileError(f"the manifest of {data_path.name} is of another record or format")
    if body.file != data_path.name:
        raise ArchiveFileError(f"the manifest beside {data_path.name} is that of {body.file}")
    try:
        data = data_path.read_bytes()
    except OSError as exc:
        raise ArchiveFileError(f"the archive file {data_path} cannot be read ({exc.strerror})") from None
    actual = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(actual, body.sha256) or (sha256 is not None and sha256 != body.sha256):
        raise ArchiveFileError(
            f"the archive file {data_path.name} has been altered: its SHA-256 is not the manifest's"
        )
    return manifest, data


def checked(data_path: Path, keyring: Keyring, record_id: str, sha256: str | None = None) -> Manifest:
    return load_checked(data_path, keyring, record_id, sha256)[0]


class Facts(msgspec.Struct, frozen=True):
    rows: int
    earliest: datetime | None
    latest: datetime | None


def facts(data: bytes) -> Facts:
    """Rows and time range of checked bytes (only the time column is decoded)."""
    times = read_table_columns(data, ["ts"]).column("ts")
    if len(times) == 0:
        return Facts(0, None, None)
    return Facts(len(times), pc.min(times).as_py(), pc.max(times).as_py())


def read_table_columns(data: bytes, columns: list[str]) -> pa.Table:
    try:
        table: pa.Table = pq.read_table(pa.BufferReader(data), columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveFileError(f"the archive file cannot be read ({exc})") from None
    return table


def batches_of(data: bytes, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of checked bytes as tuples in COLUMNS order, `size` at a time (for COPY into a
    partition), decoded a batch at a time."""
    try:
        source = pq.ParquetFile(pa.BufferReader(data))
        for batch in source.iter_batches(batch_size=size, columns=list(COLUMNS)):
            columns = [batch.column(name).to_pylist() for name in COLUMNS]
            yield list(zip(*columns, strict=True))
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveFileError(f"the archive file cannot be read ({exc})") from None


def next_batch(batches: Iterator[list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    """The next batch, or an empty one at the end (a call for a worker thread)."""
    return next(batches, [])


def as_numeric(value: float) -> float:
    """A real read as `temp_c::numeric::float8`, as the reports read the database: PostgreSQL converts a
    real to numeric with six significant digits (FLT_DIG), so 4.37 reads 4.37 rather than 4.3699998."""
    return float(f"{value:.6g}")
