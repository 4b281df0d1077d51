"""Demo data for `celltrail up --demo`: the sites and people of one vein-to-vein journey."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from backend.db.repo import loggers as loggers_repo
from backend.db.repo import sites as sites_repo
from backend.db.repo import users as users_repo
from backend.db.repo.loggers import LoggerChanges
from backend.db.repo.sites import SiteRow
from backend.db.types import Pool
from backend.domain.errors import Conflict
from backend.services import accounts
from backend.services import loggers as logger_registry
from firmware_bridge.simulator import FIRMWARE
from firmware_bridge.simulator import logger_id as simulated_logger_id

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


DEMO_LOGGER_SITE = "CRX-ZRH"
DEMO_LOGGERS = 12


async def _register_demo_loggers(pool: Pool, count: int) -> None:
    """The loggers `celltrail simulate --loggers N` plays (LGR-0001...), owned by the courier depot and
    calibrated for another year; the last is overdue, so a shipment it joins raises a calibration alert.
    No broker passwords: the embedded broker of `celltrail up` admits anyone on the loopback."""
    today = datetime.now(UTC).date()
    for index in range(1, count + 1):
        logger_id = simulated_logger_id(index)
        async with pool.acquire() as conn:
            if await loggers_repo.get(conn, logger_id) is not None:
                continue
        overdue = index == count and count > 1
        changes = LoggerChanges(
            model="Celltrail simulated logger",
            firmware=FIRMWARE,
            calibration_due=today - timedelta(days=30) if overdue else today + timedelta(days=365),
            owner_site=DEMO_LOGGER_SITE,
            active=True,
        )
        try:
            await logger_registry.register(pool, None, logger_id, changes, broker_password=False)
        except Conflict:
            continue  # another process seeding at the same moment registered it first


async def seed(pool: Pool, loggers: int = DEMO_LOGGERS) -> None:
    """Idempotent: a second `make run` finds everything in place and changes nothing. `loggers` is the
    size of the simulated fleet (`celltrail up --demo --loggers N`)."""
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
    await _register_demo_loggers(pool, loggers)
    log.info("demo data in place")
