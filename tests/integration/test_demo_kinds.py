"""`celltrail up --demo` also shows the product kinds beyond autologous CAR-T, once: an allogeneic batch of
four bags made at CTA, two shipped to and stored at each hospital, a recipient at each hospital with a bag
allocated to them (USZ's dispensed, awaiting infusion), and an investigational case at KSW with a biobank
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
        allocated = await pool.fetch(
            """SELECT r.treatment_site, u.site, u.status, u.released
                 FROM unit_allocations a
                 JOIN units u ON u.id = a.unit_id
                 JOIN cases r ON r.coi = a.recipient_coi
                WHERE a.batch_coi = $1 AND a.withdrawn_event_id IS NULL ORDER BY 1""",
            batches[0]["coi"],
        )
        stored = await pool.fetch(
            """SELECT site, count(*) AS n FROM units WHERE coi = $1 AND status = 'stored'
                GROUP BY 1 ORDER BY 1""",
            batches[0]["coi"],
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
    # A bag allocated at each hospital, at that hospital: USZ's dispensed for its recipient, KSW's stored.
    assert [tuple(a) for a in allocated] == [
        ("KSW", "KSW", "stored", True),
        ("USZ", "USZ", "dispensed", True),
    ]
    assert [tuple(s) for s in stored] == [("KSW", 2), ("USZ", 1)]
    assert [(t["treatment_site"], t["patient_ref"]) for t in trials] == [("KSW", None)]
    assert [s["consent_ref"] for s in samples] == ["KSW-BIOBANK-CONSENT-2026-0042"]
