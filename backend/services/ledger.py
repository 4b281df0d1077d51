"""Former names, kept only for services/cases.py, allocation.py, allocation_pair.py and
allocation_withdraw.py until they move: `lock_chain` and `append(conn, coi=...)` (use `chain.lock` and
`chain.append(conn, chain, ...)`), `now`, `Appended` and `LockedChain` (in `chain`), `announce` (in
`outbox_events`), `verify` and `Verification` (in `chain_verify`). The planning demo patches `now` here
as well as in `chain` while these remain. New code imports the owning modules."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from backend.domain.chain import SignatureRecord
from backend.services.chain import Appended, LockedChain, lock, now
from backend.services.chain import append as append_to
from backend.services.chain_verify import Verification, verify
from backend.services.outbox_events import announce

if TYPE_CHECKING:
    from backend.db.types import Conn
    from backend.domain.access import Principal

__all__ = [
    "Appended",
    "LockedChain",
    "Verification",
    "announce",
    "append",
    "lock_chain",
    "now",
    "verify",
]


async def lock_chain(conn: Conn, coi: str) -> LockedChain:
    """`chain.lock` (raises NotFound for an unknown case)."""
    return await lock(conn, coi)


async def append(
    conn: Conn,
    *,
    coi: str,
    action: str,
    actor: Principal,
    site: str,
    detail: str,
    outcome: str = "accepted",
    refusal: str | None = None,
    shipment_id: str | None = None,
    unit_ids: list[str] | None = None,
    counterpart_id: int | None = None,
    codes: list[str] | None = None,
    device_time: datetime | None = None,
    gps: Any = None,
    data: Any = None,
    corrects: int | None = None,
    signatures: list[SignatureRecord] | None = None,
    server_time: datetime | None = None,
    chain: LockedChain | None = None,
) -> Appended:
    """`chain.append`, locking the chain first unless the caller passes the one it holds."""
    if chain is None or chain.coi != coi:
        chain = await lock(conn, coi)
    return await append_to(
        conn,
        chain,
        action=action,
        actor=actor,
        site=site,
        detail=detail,
        outcome=outcome,
        refusal=refusal,
        shipment_id=shipment_id,
        unit_ids=unit_ids,
        counterpart_id=counterpart_id,
        codes=codes,
        device_time=device_time,
        gps=gps,
        data=data,
        corrects=corrects,
        signatures=signatures,
        server_time=server_time,
    )
