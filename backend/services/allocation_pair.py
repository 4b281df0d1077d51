"""What an allocation and its withdrawal share: the bag and the recipient's case found through the object
gate and locked (both chains, then the bag), the pharmacist's signature, and one step recorded on both
chains (backend/services/allocation.py, allocation_withdraw.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from backend.db.repo import cases
from backend.db.repo.cases import CaseRow, UnitRow
from backend.db.types import Conn
from backend.domain.access import Principal, Role
from backend.domain.chain import SignatureRecord
from backend.domain.custody import Refusal
from backend.domain.errors import InvalidInput, NotFound, PermissionDenied
from backend.services import chain as chain_api
from backend.services import objects, outbox_events, signing
from celltrail_shared.identifiers import Din, IdentifierError, UnitId, parse_coi, parse_identifier


async def bag(conn: Conn, actor: Principal, text: str) -> tuple[UnitRow, CaseRow]:
    """The bag named by its unit id or DIN, through the object gate."""
    try:
        identifier = parse_identifier(text)
    except IdentifierError as exc:
        raise InvalidInput(
            f"the bag code could not be read: {exc.reason}", field_errors={"unit": exc.reason}
        ) from None
    if isinstance(identifier, UnitId):
        return await objects.unit(conn, actor, identifier.text)
    if isinstance(identifier, Din):
        found = await cases.lock_visible_units(conn, [], [identifier.barcode], None)
        try:
            return await objects.unit(conn, actor, found[0].id if found else "-")
        except NotFound:
            raise NotFound(f"no unit with DIN {identifier.eye_readable}") from None
    raise InvalidInput("the bag code must be a unit id or DIN", field_errors={"unit": "not a bag"})


def recipient_coi(text: str) -> str:
    try:
        return parse_coi(text).value
    except IdentifierError as exc:
        raise InvalidInput(str(exc), field_errors={"recipient": exc.reason}) from None


class Pair(msgspec.Struct, frozen=True):
    """A bag of a batch (its row read under lock) and a recipient's case, both chains locked."""

    unit: UnitRow
    target: CaseRow
    chains: dict[str, chain_api.LockedChain]


class Signed(msgspec.Struct, frozen=True):
    actor: Principal
    site: str
    signature: SignatureRecord
    at: datetime


async def lock_pair(conn: Conn, actor: Principal, unit_code: str, target_coi: str, site: str) -> Pair:
    """The bag and the recipient's case of an allocation or its withdrawal, through the object gate first
    (a bag or case of a site the caller is not bound to does not exist for them); then both chains, in
    one order, so that two allocations (or checks) of the same cases cannot deadlock; then the bag."""
    unit, _batch_case = await bag(conn, actor, unit_code)
    target = await objects.case(conn, actor, target_coi)
    if not actor.at_site(site):
        raise PermissionDenied(f"you are not assigned to site {site}")
    chains = {coi: await chain_api.lock(conn, coi) for coi in sorted({unit.coi, target.coi})}
    (locked,) = await cases.units_by_ids(conn, [unit.id], lock=True)
    return Pair(locked, target, chains)


async def sign(
    conn: Conn, actor: Principal, password: str, meaning: str, at: datetime, site: str
) -> SignatureRecord:
    """The pharmacist's signature, or 422 naming the refusal."""
    try:
        return await signing.sign(
            conn, actor.username, password, meaning, frozenset({Role.PHARMACIST}), at, site
        )
    except Refusal as refusal:
        raise InvalidInput(refusal.detail, field_errors={"password": "wrong"}) from None


async def record_pair(
    conn: Conn,
    pair: Pair,
    signed: Signed,
    batch_step: tuple[str, str],
    batch_data: dict[str, Any],
    recipient_step: tuple[str, str],
    recipient_data: dict[str, Any],
) -> tuple[chain_api.Appended, chain_api.Appended]:
    """One step on both chains: the signed (action, detail) on the batch's, naming the bag, and its
    counterpart on the recipient's, pointing to it (`event_id`); both announced at the site."""
    unit, target = pair.unit, pair.target
    first = await chain_api.append(
        conn,
        pair.chains[unit.coi],
        action=batch_step[0],
        actor=signed.actor,
        site=signed.site,
        detail=batch_step[1],
        unit_ids=[unit.id],
        data=batch_data,
        signatures=[signed.signature],
        server_time=signed.at,
    )
    second = await chain_api.append(
        conn,
        pair.chains[target.coi],
        action=recipient_step[0],
        actor=signed.actor,
        site=signed.site,
        detail=recipient_step[1],
        data={**recipient_data, "event_id": first.event_id},
        server_time=signed.at,
    )
    for coi, appended, action in ((unit.coi, first, batch_step[0]), (target.coi, second, recipient_step[0])):
        await outbox_events.announce(
            conn, "event", [signed.site], coi, {"event_id": appended.event_id, "action": action}
        )
    return first, second
