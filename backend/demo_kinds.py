"""Demo data for the product kinds beyond autologous CAR-T (docs/product-kinds.md): an allogeneic batch made
at CTA, released and shipped, two bags to each hospital, with a recipient at each hospital and a bag
allocated to each (USZ's dispensed, awaiting its thaw and infusion); and an investigational case at KSW
with a biobank sample. Idempotent: the batch's id marks it done."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from backend.db.repo import allocations
from backend.db.repo import users as users_repo
from backend.db.types import Pool
from backend.demo import DEMO_PASSWORD
from backend.domain.access import Principal
from backend.domain.custody import Action
from backend.domain.trials import Trial
from backend.services import allocation, auth, cases, samples, scans, shipments
from backend.services import chain as chains
from backend.services.scans import ScanCommand

log = logging.getLogger(__name__)

BATCH_ID = "DEMO-ALLO-0001"

# Where the batch's bags go and who receives, stores and allocates them there.
HOSPITALS = (("USZ", "pharmacist", "DEMO-R1"), ("KSW", "pharmacist.ksw", "DEMO-R2"))
TRIAL = Trial(
    register="2025-500001-12-00",
    protocol="CT-CAR19-02",
    site_number="KSW01",
    subject="S-0042",
    sponsor="Swiss Cell Therapy Network",
)


async def _people(pool: Pool, *usernames: str) -> dict[str, Principal]:
    people = {}
    async with pool.acquire() as conn:
        for username in usernames:
            user = await users_repo.by_username(conn, username)
            assert user is not None, username
            people[username] = auth.principal_of(user)
    return people


async def seed(pool: Pool, fin: str) -> None:
    async with pool.acquire() as conn:
        if await allocations.batch_id_taken(conn, BATCH_ID):
            return  # a second `make run`: already in place
    people = await _people(
        pool, "manufacturing", "coordinator", "nurse.ksw", "qa", "courier", "pharmacist", "pharmacist.ksw"
    )
    batch = await allocation.register_batch(
        pool,
        people["manufacturing"],
        batch_id=BATCH_ID,
        source=("cell_line", "iPSC-LINE-07"),
        product="Allogeneic CAR-NK (off-the-shelf), demo",
        site="CTA",
        units=4,
        expires_at=chains.now() + timedelta(days=270),
        fin=fin,
    )
    await _allocated_at_the_hospitals(pool, people, batch, fin)
    trial_case = await cases.create_case(
        pool,
        people["coordinator"],
        treatment_site="KSW",
        therapy="CAR-T (investigational), demo",
        patient_ref=None,
        birth_year=None,
        fin=fin,
        trial=TRIAL,
    )
    await samples.register_sample(
        pool,
        people["nurse.ksw"],
        trial_case.coi,
        description="Baseline blood, 2 x 1 mL plasma",
        site="KSW",
        consent_ref="KSW-BIOBANK-CONSENT-2026-0042",
    )
    log.info("demo product kinds in place", extra={"batch": BATCH_ID, "batch_coi": batch.batch.coi})


async def _scan(
    pool: Pool, who: Principal, action: Action, site: str, *codes: str, storage_location: str | None = None
) -> None:
    command = ScanCommand(
        idempotency_key=uuid.uuid4().hex,
        action=action,
        site=site,
        codes=list(codes),
        storage_location=storage_location,
    )
    outcome = await scans.record_scan(pool, who, command, 30)
    if isinstance(outcome, scans.Refused):
        raise RuntimeError(f"demo {action} refused: {outcome.detail}")


async def _allocated_at_the_hospitals(
    pool: Pool, people: dict[str, Principal], batch: allocation.Batch, fin: str
) -> None:
    """The batch labelled and released at CTA, two bags shipped to each hospital, received, accepted
    and stored there; a recipient at each hospital with a bag allocated to them; USZ's bag dispensed
    with the recipient's wristband, so the bedside has a bag awaiting its thaw and infusion."""
    coi, bags = batch.batch.coi, [u.id for u in batch.units]
    await _scan(pool, people["manufacturing"], Action.LABEL, "CTA", *bags)
    for bag in bags:
        await cases.release_unit(pool, people["qa"], bag, password=DEMO_PASSWORD)
    now = chains.now()
    for number, (site, pharmacist, patient) in enumerate(HOSPITALS, start=1):
        mine = bags[2 * number - 2 : 2 * number]
        leg = await shipments.create_shipment(
            pool,
            people["manufacturing"],
            coi=coi,
            from_site="CTA",
            to_site=site,
            container_id=f"DEMO-ALLO-{number}",
            logger_id=None,
            profile="cryo",
            planned_departure=now - timedelta(hours=8),
            planned_arrival=now - timedelta(hours=2),
            unit_ids=mine,
            seals=[f"SEAL-ALLO-{number}"],
            waybill=f"WB-DEMO-ALLO-{number}",
        )
        await _scan(pool, people["manufacturing"], Action.PACK, "CTA", leg.id, *mine)
        await _scan(pool, people["courier"], Action.PICKUP, "CTA", leg.id)
        await _scan(pool, people[pharmacist], Action.RECEIVE, site, leg.id)
        await _scan(pool, people[pharmacist], Action.RECEIVE, site, leg.id, *mine)
        checklist = {"seals_intact": True, "shipper_intact": True, "temperature_reviewed": True}
        await shipments.decide_receipt(
            pool,
            people[pharmacist],
            leg.id,
            accept=True,
            checklist=checklist,
            comment=None,
            password=DEMO_PASSWORD,
        )
        await _scan(pool, people[pharmacist], Action.STORE, site, *mine, storage_location="LN2 dewar 1")
        recipient = await allocation.open_recipient(
            pool,
            people["coordinator"],
            treatment_site=site,
            therapy="Allogeneic CAR-NK (off-the-shelf), demo",
            patient_ref=patient,
            birth_year=1971,
            fin=fin,
        )
        await allocation.allocate(
            pool,
            people[pharmacist],
            site=site,
            unit_code=mine[0],
            recipient=recipient.coi,
            password=DEMO_PASSWORD,
        )
        if site == "USZ":
            await _scan(pool, people[pharmacist], Action.DISPENSE, site, mine[0], f"&/{recipient.coi}")
