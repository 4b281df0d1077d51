"""The chain, alert, outbox and verification functions under their former names, for the callers not yet
moved to `chain`, `alerting`, `outbox_events` and `chain_verify`. New code imports those modules."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from backend.domain.chain import SignatureRecord
from backend.services.alerting import raise_alert, resolve_alert
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
    "raise_alert",
    "resolve_alert",
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
