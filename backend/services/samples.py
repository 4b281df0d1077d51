"""Biobank samples: research samples taken along a case (a retained sample of the product, the patient's
blood for the network's biobank) are units of kind SMP with their own id, label, custody and storage
position, linked to the case and to the consent they were taken under.

Registering one needs that consent's reference; storing one names its position (freezer, rack, box,
position) and is a custody step `store` of the case's chain, so a move is another store and the record
shows where a sample has been. The custody state machine keeps every sample away from patients
(`backend.domain.samples`)."""

from __future__ import annotations

import msgspec

from backend.db.repo import cases
from backend.db.repo.cases import UnitRow
from backend.db.types import Conn, Pool
from backend.domain.access import Principal, Role
from backend.domain.custody import Action, Refusal, decide
from backend.domain.errors import Conflict, InvalidInput, PermissionDenied
from backend.domain.samples import SAMPLE
from backend.services import chain as chains
from backend.services import objects, outbox_events, unit_registry
from backend.services.cases import get_case
from celltrail_shared.identifiers import UnitId

# Who takes and registers samples — the hospital's staff (the patient's blood) and manufacturing (a
# retained sample of the product) — is `backend.services.unit_registry.REGISTRARS`.


class Position(msgspec.Struct, frozen=True, kw_only=True):
    freezer: str
    rack: str
    box: str
    position: str

    @property
    def text(self) -> str:
        return f"freezer {self.freezer} / rack {self.rack} / box {self.box} / position {self.position}"


async def register_sample(
    pool: Pool, actor: Principal, coi_text: str, *, description: str, site: str, consent_ref: str
) -> UnitRow:
    """Register a sample of the case at `site` (one of the registering person's sites)."""
    if not consent_ref.strip():
        raise InvalidInput("a biobank sample names its consent", field_errors={"consent_ref": "required"})
    case = await get_case(pool, actor, coi_text)
    unit_registry.check_registrar(actor, SAMPLE, site)
    if case.status != "open":
        raise Conflict(f"case {case.coi} is {case.status}: no samples are registered on it any more")

    async def write(conn: Conn, unit: UnitId) -> unit_registry.Entry:
        await cases.insert_sample(conn, unit.text, case.coi, description, site, consent_ref)
        return unit_registry.Entry(
            f"registered biobank sample {unit.text} ({description})",
            {"kind": SAMPLE, "product": description, "consent_ref": consent_ref},
        )

    return await unit_registry.register(pool, actor, case, kind=SAMPLE, site=site, write=write)


async def samples_of_case(pool: Pool, coi: str) -> list[UnitRow]:
    """The case's biobank samples, for a reader the caller has let see the case (its record)."""
    async with pool.acquire() as conn:
        return [unit for unit in await cases.units_of_case(conn, coi) if unit.kind == SAMPLE]


async def store_sample(
    pool: Pool, actor: Principal, unit_id: str, *, site: str, position: Position
) -> tuple[UnitRow, chains.Appended]:
    """Store a sample at a position, or move it to another: the custody step `store`, by someone bound to
    the sample's site, with the position in the chain."""
    async with pool.acquire() as conn:
        found, _case = await objects.unit(conn, actor, unit_id)
    if found.kind != SAMPLE:
        raise Conflict(f"{unit_id} is not a biobank sample; store other units with a store scan")
    if not actor.has_any(frozenset({Role.PHARMACIST, Role.MANUFACTURING})):
        raise PermissionDenied("samples are stored by the hospital's pharmacists or by manufacturing")
    if not actor.at_site(site):
        raise PermissionDenied(f"you are not assigned to site {site}")
    async with pool.acquire() as conn, conn.transaction():
        chain = await chains.lock(conn, found.coi)
        locked = await cases.units_by_ids(conn, [unit_id], lock=True)
        assert locked
        now = chains.now()
        try:
            # No case status: a biobank keeps its samples beyond the treatment, so a completed or cancelled
            # case's samples are still stored and moved (a closed case takes no other step of them).
            change = decide(
                Action.STORE,
                site=site,
                actor_id=actor.user_id,
                shipment=None,
                units=[locked[0].state()],
                now=now,
            )
        except Refusal as refusal:
            raise Conflict(refusal.detail) from None
        moved = locked[0].status == "stored"
        appended = await chains.append(
            conn,
            chain,
            action=Action.STORE.value,
            actor=actor,
            site=site,
            detail=f"{'moved' if moved else 'stored'} sample {unit_id} to {position.text}",
            unit_ids=[unit_id],
            data={"storage_location": position.text, "position": msgspec.structs.asdict(position)},
            server_time=now,
        )
        await cases.set_unit_status(conn, [unit_id], change.unit_status[unit_id], position.text)
        await outbox_events.announce(
            conn, "unit", [site], found.coi, {"unit_id": unit_id, "status": "stored"}
        )
        stored = await cases.get_unit(conn, unit_id)
    assert stored is not None
    return stored, appended
