"""Registering a unit on a case — a bag of starting material, a product bag or a biobank sample — is one
step however the unit came about: who may register which kind, and, in one transaction, the case's chain
locked, the unit numbered after the case's others of its kind, its row written, the `unit_registered`
event recorded and the unit announced to the registering site and the treatment site.

`backend.services.cases.create_unit` (bags) and `backend.services.samples.register_sample` (samples) say
only what is their own: the row they write and what the registration records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec

from backend.db.repo import cases
from backend.db.repo.cases import CaseRow, UnitRow
from backend.db.types import Conn, Pool
from backend.domain.access import Principal, Role
from backend.domain.errors import PermissionDenied
from backend.services import chain as chains
from backend.services import outbox_events
from celltrail_shared.identifiers import Coi, UnitId, UnitKind

# Who registers each kind of unit, and what a refusal tells everyone else.
REGISTRARS: Final[dict[str, tuple[frozenset[Role], str]]] = {
    "PRC": (frozenset({Role.MANUFACTURING}), "product bags are registered by manufacturing"),
    "APH": (
        frozenset({Role.PHARMACIST, Role.COORDINATOR, Role.MANUFACTURING}),
        "starting material is registered by the collection site's staff",
    ),
    "SMP": (
        frozenset({Role.PHARMACIST, Role.COORDINATOR, Role.MANUFACTURING}),
        "samples are registered by the hospital's staff or by manufacturing",
    ),
}


class Entry(msgspec.Struct, frozen=True):
    """What the unit's `unit_registered` event says: its detail line and its data."""

    detail: str
    data: dict[str, Any]


# Writes the numbered unit's row (after any checks of its own) and answers what its registration records.
Write = Callable[[Conn, UnitId], Awaitable[Entry]]
# Further steps of the same transaction once the registration is recorded (a product's inputs consumed).
Then = Callable[[Conn, UnitId], Awaitable[None]]


def check_registrar(actor: Principal, kind: str, site: str) -> None:
    """Refuse someone whose roles do not register `kind`, or who is not bound to `site`."""
    roles, refusal = REGISTRARS.get(kind, (frozenset(), ""))
    if roles and not actor.has_any(roles):
        raise PermissionDenied(refusal)
    if not actor.at_site(site):
        raise PermissionDenied(f"you are not assigned to site {site}")


async def register(
    pool: Pool,
    actor: Principal,
    case: CaseRow,
    *,
    kind: str,
    site: str,
    write: Write,
    then: Then | None = None,
) -> UnitRow:
    """Number, write, record and announce a unit of `kind` on `case` at `site` (the caller has checked
    who registers it with `check_registrar`); the unit as stored."""
    async with pool.acquire() as conn, conn.transaction():
        chain = await chains.lock(conn, case.coi)
        number = await cases.count_units(conn, case.coi, kind) + 1
        unit = UnitId(coi=Coi.from_value(case.coi), kind=UnitKind(kind), number=number)
        entry = await write(conn, unit)
        await chains.append(
            conn,
            chain,
            action="unit_registered",
            actor=actor,
            site=site,
            detail=entry.detail,
            unit_ids=[unit.text],
            data=entry.data,
        )
        if then is not None:
            await then(conn, unit)
        await outbox_events.announce(
            conn, "unit", [site, case.treatment_site], case.coi, {"unit_id": unit.text, "status": "created"}
        )
        created = await cases.get_unit(conn, unit.text)
    assert created is not None
    return created
