"""`celltrail up --demo` also shows the product kinds beyond autologous CAR-T, once: an allogeneic batch of
four bags made at CTA with a recipient at each hospital, and an investigational case at KSW with a biobank
sample taken under consent (docs/product-kinds.md)."""

from __future__ import annotations

from backend.db.pool import create_pool
from backend.demo import seed
from backend.demo_kinds import BATCH_ID, TRIAL


async def test_the_demo_has_an_allogeneic_batch_and_a_trial_case_once(database_url):
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await seed(pool)
        await seed(pool)
        batches = await pool.fetch("SELECT coi FROM allogeneic_batches WHERE batch_id = $1", BATCH_ID)
        bags = await pool.fetchval(
            "SELECT count(*) FROM units WHERE coi = $1 AND kind = 'PRC'", batches[0]["coi"]
        )
        recipients = await pool.fetch(
            "SELECT treatment_site FROM cases WHERE product_kind = 'allogeneic_recipient' ORDER BY 1"
        )
        trials = await pool.fetch(
            "SELECT coi, treatment_site, patient_ref FROM cases WHERE trial_register = $1", TRIAL.register
        )
        samples = await pool.fetch(
            "SELECT consent_ref FROM units WHERE kind = 'SMP' AND coi = $1", trials[0]["coi"]
        )
    finally:
        await pool.close()
    assert len(batches) == 1
    assert bags == 4
    assert [r["treatment_site"] for r in recipients] == ["KSW", "USZ"]
    assert [(t["treatment_site"], t["patient_ref"]) for t in trials] == [("KSW", None)]
    assert [s["consent_ref"] for s in samples] == ["KSW-BIOBANK-CONSENT-2026-0042"]
