"""QA holds: QA puts a unit on hold (quarantined: it is not packed, stored, dispensed or infused) and
releases it, each a signed custody event with the reason. Releasing a hold is also how QA disposes of a
delivery quarantined at receipt. The unit's `quarantined` flag follows the last of these steps, and the
scan's check of stored against recorded states reads the same steps (migration 0020)."""

from __future__ import annotations

from backend.db.repo import cases
from backend.db.types import Pool
from backend.domain.access import Principal, Role
from backend.domain.custody import FINAL_UNIT_STATES, Refusal
from backend.domain.errors import Conflict, InvalidInput, PermissionDenied
from backend.services import chain as chains
from backend.services import objects, signing
from backend.services.outbox_events import announce

HOLD, HOLD_RELEASED = "hold", "hold_released"
_MEANINGS = {HOLD: "placed on hold", HOLD_RELEASED: "released from hold"}


async def change_hold(
    pool: Pool, actor: Principal, unit_id: str, *, hold: bool, reason: str, password: str
) -> chains.Appended:
    action = HOLD if hold else HOLD_RELEASED
    async with pool.acquire() as conn, conn.transaction():
        unit, case = await objects.unit(conn, actor, unit_id)
        site = next(
            (s for s in [unit.site, case.treatment_site, *case.sites] if s and actor.at_site(s)), None
        )
        if site is None:
            raise PermissionDenied(f"a hold on {unit.id} is decided by QA bound to one of its case's sites")
        chain = await chains.lock(conn, unit.coi)
        [current] = await cases.lock_visible_units(conn, [unit.id], [], None)
        if current.status in FINAL_UNIT_STATES:
            raise Conflict(f"unit {unit.id} is {current.status}; there is nothing left to hold")
        if hold and current.quarantined:
            raise Conflict(f"unit {unit.id} is already quarantined")
        if not hold and not current.quarantined:
            raise Conflict(f"unit {unit.id} is not on hold or quarantined")
        at = chains.now()
        try:
            signature = await signing.sign(
                conn, actor.username, password, _MEANINGS[action], frozenset({Role.QA}), at, site
            )
        except Refusal as refusal:
            raise InvalidInput(refusal.detail, field_errors={"password": "wrong"}) from None
        await cases.set_quarantined(conn, [unit.id], hold)
        appended = await chains.append(
            conn,
            chain,
            action=action,
            actor=actor,
            site=site,
            detail=f"{unit.id} {_MEANINGS[action]}: {reason}",
            unit_ids=[unit.id],
            data={"reason": reason},
            signatures=[signature],
            server_time=at,
        )
        await announce(
            conn, "unit", case.sites, unit.coi, {"unit_id": unit.id, "quarantined": hold, "event": action}
        )
    return appended
