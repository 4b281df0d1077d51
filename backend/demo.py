"""Demo data for `celltrail up --demo`: the sites and people of one vein-to-vein journey."""

from __future__ import annotations

import logging

from backend.db.repo import sites as sites_repo
from backend.db.repo import users as users_repo
from backend.db.repo.sites import SiteRow
from backend.db.types import Pool
from backend.services import accounts

log = logging.getLogger(__name__)

DEMO_PASSWORD = "celltrail-demo"  # noqa: S105 - printed for the demo on purpose; never used outside it

DEMO_SITES = (
    SiteRow("USZ", "University Hospital Zurich — pharmacy and ward", "hospital", "Europe/Zurich", None),
    SiteRow("USZ-APH", "University Hospital Zurich — apheresis unit", "apheresis", "Europe/Zurich", None),
    SiteRow("CTA", "Cell Therapy Accelerator (manufacturing)", "manufacturing", "Europe/Zurich", None),
    SiteRow("CRX-ZRH", "Cryo courier depot Zurich", "courier_depot", "Europe/Zurich", None),
)

# username, full name, roles, sites
DEMO_USERS = (
    ("coordinator", "Chris Coordinator", ["coordinator"], ["USZ", "USZ-APH", "CTA", "CRX-ZRH"]),
    ("pharmacist", "Petra Pharmacist", ["pharmacist"], ["USZ"]),
    ("nurse", "Nora Nurse", ["pharmacist"], ["USZ", "USZ-APH"]),
    ("courier", "Carlos Courier", ["courier"], ["CRX-ZRH", "USZ", "USZ-APH", "CTA"]),
    ("manufacturing", "Mia Manufacturing", ["manufacturing"], ["CTA"]),
    ("qa", "Quentin QA", ["qa"], ["CTA"]),
)


async def seed(pool: Pool) -> None:
    """Idempotent: a second `make run` finds everything in place and changes nothing."""
    async with pool.acquire() as conn:
        for site in DEMO_SITES:
            if await sites_repo.get(conn, site.code) is None:
                await accounts.create_site(pool, None, site)
        for username, full_name, roles, site_codes in DEMO_USERS:
            if await users_repo.by_username(conn, username) is None:
                await accounts.create_user(
                    pool,
                    None,
                    username=username,
                    full_name=full_name,
                    password=DEMO_PASSWORD,
                    roles=roles,
                    site_codes=site_codes,
                )
    log.info("demo data in place")
