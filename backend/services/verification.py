"""Every chain at once (`celltrail verify --all`): each case's verdict with the given keyring and the
latest checkpoint, and the checkpointed cases that no longer exist at all (a whole case deleted)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from backend.db.pool import create_pool
from backend.db.repo import catalog
from backend.domain import checkpoint
from backend.domain.keyring import Keyring
from backend.services import chain_verify, checkpoints


class Report(msgspec.Struct, frozen=True):
    verdicts: list[chain_verify.Verification]
    # Cases the latest authentic checkpoint names that the database no longer holds.
    vanished: list[str]
    # Cases asked for by COI that the database does not hold.
    unknown: list[str]
    checkpoint_file: str | None
    checkpoint_authenticity: str | None

    @property
    def verified(self) -> int:
        return sum(v.ok for v in self.verdicts)

    @property
    def broken(self) -> bool:
        return bool(self.vanished or self.unknown) or any(v.status == "broken" for v in self.verdicts)

    @property
    def unverifiable(self) -> bool:
        return self.checkpoint_authenticity == "unverifiable" or any(
            v.status == "unverifiable" for v in self.verdicts
        )


async def verify_all(
    url: str, keyring: Keyring, checkpoint_dir: Path, cois: list[str] | None = None
) -> Report:
    """`cois`: only these cases (None: every case in the database)."""
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            latest = await checkpoints.latest_for(conn, checkpoint_dir)
            present = await catalog.case_cois(conn)
            wanted = present if cois is None else [c for c in cois if c in present]
            verdicts = [await chain_verify.verify(conn, coi, keyring, latest) for coi in wanted]
    finally:
        await pool.close()
    vanished: list[str] = []
    authenticity = None
    if latest is not None:
        authenticity = checkpoint.authenticity(latest[1], keyring)
        if authenticity == "authentic" and cois is None:
            vanished = sorted({h.coi for h in latest[1].body.cases} - set(present))
    unknown = [c for c in cois or [] if c not in present]
    return Report(verdicts, vanished, unknown, latest[0] if latest else None, authenticity)
