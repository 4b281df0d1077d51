"""Who a courier can hand a shipment over to: the people bound to the shipment's destination site whose
role may take custody. Read through the object gate, so another site's shipment names nobody."""

from __future__ import annotations

from typing import Final

import msgspec

from backend.db.repo import users
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.services import objects

# The roles the hand-over step accepts as a receiver (backend/services/scans.py `_receiver`).
CUSTODIANS: Final = frozenset({"courier", "pharmacist", "manufacturing"})


class Receiver(msgspec.Struct, frozen=True):
    username: str
    full_name: str
    roles: list[str]


class Receivers(msgspec.Struct, frozen=True):
    shipment_id: str
    site: str
    people: list[Receiver]


async def of_shipment(pool: Pool, actor: Principal, shipment_id: str) -> Receivers:
    async with pool.acquire() as conn:
        shipment = await objects.shipment(conn, actor, shipment_id)
        bound = await users.list_all(conn, shipment.to_site)
    people = [
        Receiver(u.username, u.full_name, sorted(CUSTODIANS & set(u.roles)))
        for u in bound
        if u.active and u.id != actor.user_id and CUSTODIANS & set(u.roles)
    ]
    return Receivers(shipment.id, shipment.to_site, people)
