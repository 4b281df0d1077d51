"""Demo data for the product kinds beyond autologous CAR-T (docs/product-kinds.md): an allogeneic batch made
at CTA with a recipient at each hospital, and an investigational case at KSW with a biobank sample.
Idempotent: the batch's id marks it done."""

from __future__ import annotations

import logging
from datetime import timedelta

from backend.db.repo import allocations
from backend.db.repo import users as users_repo
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.domain.trials import Trial
from backend.services import allocation, auth, cases, ledger, samples

log = logging.getLogger(__name__)

BATCH_ID = "DEMO-ALLO-0001"
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
    people = await _people(pool, "manufacturing", "coordinator", "nurse.ksw")
    batch = await allocation.register_batch(
        pool,
        people["manufacturing"],
        batch_id=BATCH_ID,
        source=("cell_line", "iPSC-LINE-07"),
        product="Allogeneic CAR-NK (off-the-shelf), demo",
        site="CTA",
        units=4,
        expires_at=ledger.now() + timedelta(days=270),
        fin=fin,
    )
    for site, patient in (("USZ", "DEMO-R1"), ("KSW", "DEMO-R2")):
        await allocation.open_recipient(
            pool,
            people["coordinator"],
            treatment_site=site,
            therapy="Allogeneic CAR-NK (off-the-shelf), demo",
            patient_ref=patient,
            birth_year=1971,
            fin=fin,
        )
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
