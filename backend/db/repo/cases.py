"""Cases (therapy orders) and their units (bags)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from backend.domain.custody import UnitState
from backend.domain.trials import Trial, trial_of

if TYPE_CHECKING:
    from backend.db.types import Conn


class CaseRow(msgspec.Struct, frozen=True):
    coi: str
    treatment_site: str
    therapy: str
    status: str
    patient_ref: str | None
    birth_year: int | None
    created_at: datetime
    chain_length: int
    sites: list[str]
    # A trial case's trial (migration 0051); all None for any other case.
    trial_register: str | None = None
    trial_protocol: str | None = None
    trial_site_number: str | None = None
    trial_subject: str | None = None
    trial_sponsor: str | None = None

    @property
    def trial(self) -> Trial | None:
        return trial_of(
            self.trial_register,
            self.trial_protocol,
            self.trial_site_number,
            self.trial_subject,
            self.trial_sponsor,
        )


class UnitRow(msgspec.Struct, frozen=True):
    id: str
    coi: str
    kind: str
    din: str | None
    product: str
    expires_at: datetime | None
    status: str
    site: str | None
    holder_id: int | None
    shipment_id: str | None
    storage_location: str | None
    released: bool
    quarantined: bool
    thawed_at: datetime | None
    # What the bag label prints beyond identity (migration 0021).
    product_code: str | None = None
    lot: str | None = None
    volume: str | None = None
    # The catalogue product of a product bag and when it was made (migration 0048).
    catalogue_product: str | None = None
    manufactured_at: datetime | None = None
    # The consent a biobank sample (SMP) was taken under (migration 0052).
    consent_ref: str | None = None
    # Read only by a scan's look-up (`lock_visible_units`): the catalogue product's thaw-to-infusion
    # window in minutes, and the time zone of the unit's site.
    thaw_to_infusion_min: int | None = None
    site_zone: str | None = None

    def state(self) -> UnitState:
        return UnitState(
            self.id,
            self.coi,
            self.kind,
            self.status,
            self.site,
            self.shipment_id,
            self.released,
            self.quarantined,
        )


# Every site a case touches: who may see it is decided from this list.
_CASE = """
SELECT c.coi, c.treatment_site, c.therapy, c.status, c.patient_ref, c.birth_year, c.created_at,
       c.chain_length, c.trial_register, c.trial_protocol, c.trial_site_number, c.trial_subject,
       c.trial_sponsor,
       ARRAY(SELECT DISTINCT s FROM (
           SELECT c.treatment_site AS s
           UNION SELECT from_site FROM shipments WHERE coi = c.coi
           UNION SELECT to_site FROM shipments WHERE coi = c.coi
           UNION SELECT site FROM units WHERE coi = c.coi AND site IS NOT NULL) AS x ORDER BY s) AS sites
FROM cases c
"""
_UNIT = """SELECT id, coi, kind, din, product, expires_at, status, site, holder_id, shipment_id,
                  storage_location, released, quarantined, thawed_at, product_code, lot, volume,
                  catalogue_product, manufactured_at, consent_ref FROM units"""


async def next_coi_number(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT nextval('coi_sequence')"))


async def insert_case(
    conn: Conn,
    coi: str,
    site: str,
    therapy: str,
    patient_ref: str | None,
    birth_year: int | None,
    created_by: int,
) -> None:
    await conn.execute(
        """INSERT INTO cases (coi, treatment_site, therapy, patient_ref, birth_year, created_by)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        coi,
        site,
        therapy,
        patient_ref,
        birth_year,
        created_by,
    )


async def get_case(conn: Conn, coi: str) -> CaseRow | None:
    row = await conn.fetchrow(_CASE + " WHERE c.coi = $1", coi)
    return CaseRow(**row) if row else None


async def list_cases(conn: Conn, sites: list[str] | None, limit: int) -> list[CaseRow]:
    rows = await conn.fetch(
        f"SELECT * FROM ({_CASE}) AS cs WHERE $1::text[] IS NULL OR cs.sites && $1 "  # noqa: S608 - constant
        "ORDER BY created_at DESC LIMIT $2",
        sites,
        limit,
    )
    return [CaseRow(**r) for r in rows]


async def lock_chain(conn: Conn, coi: str) -> tuple[int, bytes | None] | None:
    """Lock the case's chain head for this transaction: appends to one case are serialised here, so the
    chain stays gap-free however many scans arrive at once."""
    row = await conn.fetchrow("SELECT chain_length, chain_head FROM cases WHERE coi = $1 FOR UPDATE", coi)
    return (row["chain_length"], row["chain_head"]) if row else None


async def chain_state(conn: Conn, coi: str) -> dict[str, Any] | None:
    """The case's chain length, head and status, unlocked (verification reads them)."""
    row = await conn.fetchrow("SELECT chain_length, chain_head, status FROM cases WHERE coi = $1", coi)
    return dict(row) if row else None


async def count_units(conn: Conn, coi: str, kind: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM units WHERE coi = $1 AND kind = $2", coi, kind))


async def insert_unit(
    conn: Conn,
    unit_id: str,
    coi: str,
    kind: str,
    din: str | None,
    product: str,
    expires_at: datetime | None,
    site: str,
    label: tuple[str | None, str | None, str | None] = (None, None, None),
    catalogue: tuple[str | None, datetime | None] = (None, None),
) -> None:
    """`label`: the product code, lot and volume the bag label prints; `catalogue`: the catalogue
    product and the manufacture time of a product bag."""
    await conn.execute(
        """INSERT INTO units (id, coi, kind, din, product, expires_at, status, site, product_code, lot, volume,
                              catalogue_product, manufactured_at)
           VALUES ($1, $2, $3, $4, $5, $6, 'created', $7, $8, $9, $10, $11, $12)""",
        unit_id,
        coi,
        kind,
        din,
        product,
        expires_at,
        site,
        *label,
        *catalogue,
    )


async def get_unit(conn: Conn, unit_id: str) -> UnitRow | None:
    row = await conn.fetchrow(_UNIT + " WHERE id = $1", unit_id)
    return UnitRow(**row) if row else None


async def units_of_case(conn: Conn, coi: str) -> list[UnitRow]:
    return [UnitRow(**r) for r in await conn.fetch(_UNIT + " WHERE coi = $1 ORDER BY id", coi)]


async def units_by_ids(conn: Conn, ids: list[str], lock: bool = False) -> list[UnitRow]:
    rows = await conn.fetch(
        _UNIT + " WHERE id = ANY($1::text[]) ORDER BY id" + (" FOR UPDATE" if lock else ""), ids
    )
    return [UnitRow(**r) for r in rows]


async def lock_visible_units(
    conn: Conn, ids: list[str], dins: list[str], sites: list[str] | None
) -> list[UnitRow]:
    """The units named by id or DIN whose case the caller may see, locked; the others are left alone.
    Visible: the case's treatment site, the ends of its legs, or where one of its units is (the same sites
    as _CASE lists); NULL sites, no restriction (administrators). A function (migration 0060), planned
    once per connection: as a statement it was planned again on every scan."""
    rows = await conn.fetch(
        "SELECT * FROM lock_visible_units($1::text[], $2::text[], $3::text[])", ids, dins, sites
    )
    return [UnitRow(**r) for r in rows]


async def set_unit_status(
    conn: Conn, unit_ids: list[str], status: str, storage_location: str | None = None
) -> None:
    """`storage_location`, when given, is set in the same statement (a store scan: one round trip). A
    function (migration 0060), planned once per connection."""
    await conn.execute("SELECT set_unit_status($1::text[], $2, $3)", unit_ids, status, storage_location)


async def move_units(conn: Conn, unit_ids: list[str], site: str | None, holder_id: int | None) -> None:
    await conn.execute(
        "UPDATE units SET site = $2, holder_id = $3 WHERE id = ANY($1::text[])", unit_ids, site, holder_id
    )


async def set_released(conn: Conn, unit_id: str) -> None:
    await conn.execute("UPDATE units SET released = true WHERE id = $1", unit_id)


async def set_quarantined(conn: Conn, unit_ids: list[str], quarantined: bool) -> None:
    await conn.execute("UPDATE units SET quarantined = $2 WHERE id = ANY($1::text[])", unit_ids, quarantined)


async def assign_shipment(conn: Conn, unit_ids: list[str], shipment_id: str) -> None:
    await conn.execute("UPDATE units SET shipment_id = $2 WHERE id = ANY($1::text[])", unit_ids, shipment_id)


async def heads(conn: Conn) -> list[tuple[str, int, bytes]]:
    """Every case's last event (seq and link), read from the events themselves, not from `cases`."""
    rows = await conn.fetch(
        """SELECT c.coi, e.seq, e.hash FROM cases c
           CROSS JOIN LATERAL (SELECT seq, hash FROM custody_events
                               WHERE coi = c.coi ORDER BY seq DESC LIMIT 1) AS e
           ORDER BY c.coi"""
    )
    return [(r["coi"], r["seq"], r["hash"]) for r in rows]


class RecordedUnit(msgspec.Struct, frozen=True, array_like=True):
    action: str | None
    # server time of that step (for a thawed bag: when the record says it was thawed)
    at: datetime | None
    released: bool
    quarantined: bool


class RecordedStates(msgspec.Struct, frozen=True):
    """The chain head, locked, with the last status-setting step the record holds for some units and a
    shipment: what a scan compares the stored states with before it acts."""

    length: int
    head: bytes | None
    case_status: str
    # unit id -> the record's view of it: the action of the last accepted step that set its status (None:
    # none recorded), whether a QA release names it, whether a receipt quarantined it
    units: dict[str, RecordedUnit]
    # (action, receipt decision) of the shipment's last accepted status-setting step
    shipment_action: tuple[str, str | None] | None


async def lock_chain_with_record(
    conn: Conn,
    coi: str,
    unit_ids: list[str],
    unit_actions: list[str],
    shipment_id: str | None,
    shipment_actions: list[str],
) -> RecordedStates | None:
    """`lock_chain` and the record's last status-setting steps in the same statement: the scan's check
    of stored against recorded states costs no extra round trip. Each look-up walks the case's events
    backwards on the (coi, seq) index and stops at the first match; the statement lives in the database
    function `case_recorded_states` (migrations 0017 to 0050), planned once per connection, which
    answers in arrays that the driver decodes without JSON."""
    row = await conn.fetchrow(
        "SELECT * FROM case_recorded_states($1, $2, $3, $4, $5)",
        coi,
        unit_ids,
        unit_actions,
        shipment_id,
        shipment_actions,
    )
    if row is None:
        return None
    units = {
        unit_id: RecordedUnit(action, at, released, quarantined)
        for unit_id, action, at, released, quarantined in zip(
            row["unit_ids"] or (),
            row["unit_last_actions"] or (),
            row["unit_last_times"] or (),
            row["unit_released"] or (),
            row["unit_quarantined"] or (),
            strict=True,
        )
    }
    shipment_action = row["shipment_last_action"]
    return RecordedStates(
        row["chain_length"],
        row["chain_head"],
        row["case_status"],
        units,
        (shipment_action, row["shipment_decision"]) if shipment_action else None,
    )


async def complete_if_done(conn: Conn, coi: str) -> bool:
    """Mark an open case completed once a product bag of it was infused and none is left to give (each
    infused or disposed). True when this call completed it."""
    done = await conn.fetchval(
        """UPDATE cases SET status = 'completed'
           WHERE coi = $1 AND status = 'open'
             AND EXISTS (SELECT FROM units WHERE coi = $1 AND kind = 'PRC' AND status = 'infused')
             AND NOT EXISTS (SELECT FROM units WHERE coi = $1 AND kind = 'PRC'
                                                AND status NOT IN ('infused', 'disposed'))
           RETURNING 1""",
        coi,
    )
    return done is not None


async def set_case_status(conn: Conn, coi: str, status: str) -> None:
    await conn.execute("UPDATE cases SET status = $2 WHERE coi = $1", coi, status)


async def set_trial(conn: Conn, coi: str, trial: Trial) -> None:
    """Name the trial of a case just created (in its creation's transaction)."""
    await conn.execute(
        """UPDATE cases SET trial_register = $2, trial_protocol = $3, trial_site_number = $4,
                            trial_subject = $5, trial_sponsor = $6
           WHERE coi = $1""",
        coi,
        trial.register,
        trial.protocol,
        trial.site_number,
        trial.subject,
        trial.sponsor,
    )


async def insert_sample(
    conn: Conn, unit_id: str, coi: str, description: str, site: str, consent_ref: str
) -> None:
    """A biobank sample (kind SMP): no DIN, no expiry, the consent it was taken under."""
    await conn.execute(
        """INSERT INTO units (id, coi, kind, product, status, site, consent_ref)
           VALUES ($1, $2, 'SMP', $3, 'created', $4, $5)""",
        unit_id,
        coi,
        description,
        site,
        consent_ref,
    )
