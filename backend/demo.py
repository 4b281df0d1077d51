"""Demo data for `celltrail up --demo`: the sites and people of one vein-to-vein journey."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, date, datetime, timedelta

from backend.db.repo import loggers as loggers_repo
from backend.db.repo import sites as sites_repo
from backend.db.repo import users as users_repo
from backend.db.repo.loggers import LoggerChanges
from backend.db.repo.sites import SiteRow
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.domain.errors import Conflict
from backend.services import accounts
from backend.services import loggers as logger_registry
from backend.settings import SettingsError
from firmware_bridge.simulator import FIRMWARE
from firmware_bridge.simulator import logger_id as simulated_logger_id

log = logging.getLogger(__name__)

DEMO_PASSWORD = "celltrail-demo"  # noqa: S105 - printed for the demo on purpose; never used outside it

DEMO_SITES = (
    SiteRow("USZ", "University Hospital Zurich — pharmacy and ward", "hospital", "Europe/Zurich", None),
    SiteRow("USZ-APH", "University Hospital Zurich — apheresis unit", "apheresis", "Europe/Zurich", None),
    SiteRow("CTA", "Cell Therapy Accelerator (manufacturing)", "manufacturing", "Europe/Zurich", None),
    SiteRow("CRX-ZRH", "Cryo courier depot Zurich", "courier_depot", "Europe/Zurich", None),
    # A second hospital with its own apheresis unit, collecting for CTA (docs/planning.md).
    SiteRow("KSW", "Cantonal Hospital Winterthur — pharmacy and ward", "hospital", "Europe/Zurich", None),
    SiteRow("KSW-APH", "Cantonal Hospital Winterthur — apheresis unit", "apheresis", "Europe/Zurich", None),
)

# username, full name, roles, sites
DEMO_USERS = (
    (
        "coordinator",
        "Chris Coordinator",
        ["coordinator"],
        ["USZ", "USZ-APH", "CTA", "CRX-ZRH", "KSW", "KSW-APH"],
    ),
    ("pharmacist", "Petra Pharmacist", ["pharmacist"], ["USZ"]),
    ("nurse", "Nora Nurse", ["pharmacist"], ["USZ", "USZ-APH"]),
    ("courier", "Carlos Courier", ["courier"], ["CRX-ZRH", "USZ", "USZ-APH", "CTA", "KSW", "KSW-APH"]),
    ("manufacturing", "Mia Manufacturing", ["manufacturing"], ["CTA"]),
    ("qa", "Quentin QA", ["qa"], ["CTA"]),
    ("nurse.ksw", "Kim Keller", ["pharmacist"], ["KSW", "KSW-APH"]),
    ("pharmacist.ksw", "Paul Peter", ["pharmacist"], ["KSW"]),
    # A courier company's driver sees only the legs assigned to the company; a client's user follows only
    # the cases made for it, read-only (docs/organisations.md). A client's site binding opens nothing.
    ("driver.cryo", "Dana Driver", ["courier"], ["CRX-ZRH", "USZ", "USZ-APH", "CTA"]),
    ("client.biotech", "Bea Biotech", ["coordinator"], ["CTA"]),
)

# code, name, kind, its sites, its users (docs/organisations.md). The network coordinator and the
# courier of the first demos belong to none and keep the site rule.
DEMO_ORGANISATIONS: tuple[tuple[str, str, str, list[str], list[str]], ...] = (
    ("USZ-NET", "University Hospital Zurich", "hospital", ["USZ", "USZ-APH"], ["pharmacist", "nurse"]),
    (
        "KSW-NET",
        "Cantonal Hospital Winterthur",
        "hospital",
        ["KSW", "KSW-APH"],
        ["nurse.ksw", "pharmacist.ksw"],
    ),
    ("CTA-ORG", "Cell Therapy Accelerator", "manufacturer", ["CTA"], ["manufacturing", "qa"]),
    ("HELVETIC-CMO", "Helvetic Cell Manufacturing (contract)", "manufacturer", [], []),
    ("CRYOCOURIER", "CryoCourier Switzerland", "courier", ["CRX-ZRH"], ["driver.cryo"]),
    ("ALPINE-EXPRESS", "Alpine Express Medical", "courier", [], []),
    ("BIOTECH-A", "Biotech A (client)", "client", [], ["client.biotech"]),
    ("PHARMA-B", "Pharma B (client)", "client", [], []),
)


DEMO_LOGGER_SITE = "CRX-ZRH"
DEMO_LOGGERS = 12


async def _register_demo_loggers(pool: Pool, count: int) -> None:
    """The loggers `celltrail simulate --loggers N` plays (LGR-0001...), owned by the courier depot and
    calibrated for another year; the last is overdue, so a shipment it joins raises a calibration alert.
    No broker passwords issued here: the embedded broker of `celltrail up` generates each simulated
    logger's own (backend/embedded/mqtt.py) and the simulator signs in with them."""
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


async def seed(pool: Pool, loggers: int = DEMO_LOGGERS, fin: str = "A9999") -> None:
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
    await _organisations(pool)
    await _register_demo_loggers(pool, loggers)
    await _journeys(pool, loggers, fin)
    from backend.services.planning import demo as planning_demo

    await planning_demo.seed(pool, DEMO_PASSWORD, fin)
    from backend import demo_kinds

    await demo_kinds.seed(pool, fin)
    log.info("demo data in place")


async def _organisations(pool: Pool) -> None:
    """The demo's organisations and who belongs to them; set again on every run (the same values)."""
    from backend.db.repo import organisations as organisations_repo
    from backend.domain.access import OrganisationKind
    from backend.services import organisations

    for code, name, kind, site_codes, usernames in DEMO_ORGANISATIONS:
        async with pool.acquire() as conn:
            known = await organisations_repo.get(conn, code) is not None
        if not known:
            await organisations.create(pool, None, code, name, OrganisationKind(kind))
        for site in site_codes:
            await organisations.set_site_organisation(pool, None, site, code)
        for username in usernames:
            await organisations.set_user_organisation(pool, None, username, code)


async def _demo_identity(pool: Pool, coordinator: Principal, coi: str, patient: str) -> None:
    """A made-up patient identity for a demo case (docs/patient-data.md), sealed with the data directory's
    patient key the backend reads too; USZ's wristbands print name and date of birth."""
    from backend.services import patient_identity, patient_keys
    from backend.settings import load_settings

    if patient_keys.current().current is None:
        try:
            patient_keys.configure(patient_keys.ensure(load_settings(os.environ)))
        except SettingsError as exc:
            log.warning("demo cases get no patient identity", extra={"why": str(exc)})
            return
    identity = patient_identity.Identity(
        name=f"Demo Patient {patient}", date_of_birth=date(1968, 4, 17), hospital_number=f"USZ-{patient}"
    )
    await patient_identity.set_identity(pool, coordinator, coi, identity)
    fields = [patient_identity.Field.NAME, patient_identity.Field.DATE_OF_BIRTH]
    await patient_identity.set_wristband_policy(pool, coordinator, "USZ", fields)


def _fleet_models(count: int) -> dict[str, str]:
    """Which container each simulated logger plays (`celltrail simulate` is seeded, so this is stable):
    a demo shipment gets a logger whose box matches its temperature profile."""
    from firmware_bridge import thermal
    from firmware_bridge.simulator import Fleet

    names = {id(thermal.FRESH_BOX): "fresh", id(thermal.LN2_SHIPPER): "cryo", id(thermal.ROOM_BOX): "crt"}
    fleet = Fleet(count, 5.0, 0.0)
    return {lg.logger_id: names.get(id(lg.model), "") for lg in fleet.loggers}


async def _journeys(pool: Pool, loggers: int, fin: str) -> None:
    """Three cases in flight so the pages have something to show: fresh apheresis material on its way to
    manufacturing, a second box packed and waiting for the courier, and a cryopreserved product on its
    way back to the hospital pharmacy. Each box carries a simulated logger playing the right container."""
    from backend.domain.custody import Action
    from backend.services import auth, cases, scans, shipments
    from backend.services.scans import ScanCommand

    people = {}
    async with pool.acquire() as conn:
        for username, *_ in DEMO_USERS:
            user = await users_repo.by_username(conn, username)
            assert user is not None
            people[username] = auth.principal_of(user)
    if await cases.list_cases(pool, people["coordinator"], 1):
        return  # a second `make run`: the journeys are already there (and may have moved on)
    models = _fleet_models(loggers)
    spare = {kind: [lg for lg, m in models.items() if m == kind] for kind in ("fresh", "cryo")}
    now = datetime.now(UTC)

    async def scan(who: str, action: Action, site: str, *codes: str) -> None:
        command = ScanCommand(idempotency_key=uuid.uuid4().hex, action=action, site=site, codes=list(codes))
        outcome = await scans.record_scan(pool, people[who], command, 30)
        if isinstance(outcome, scans.Refused):
            raise RuntimeError(f"demo {action} refused: {outcome.detail}")

    async def collected(patient: str) -> tuple[str, str]:
        case = await cases.create_case(
            pool,
            people["coordinator"],
            treatment_site="USZ",
            therapy="CAR-T (autologous), demo",
            patient_ref=patient,
            birth_year=1968,
            fin=fin,
        )
        unit = await cases.create_unit(
            pool,
            people["nurse"],
            case.coi,
            kind="APH",
            product="Apheresis (leukapheresis)",
            din=None,
            expires_at=now + timedelta(hours=48),
            site="USZ-APH",
        )
        await scan("nurse", Action.LABEL, "USZ-APH", unit.id)
        await _demo_identity(pool, people["coordinator"], case.coi, patient)
        return case.coi, unit.id

    async def ship(
        who: str, coi: str, units: list[str], route: tuple[str, str], profile: str, hours: int, number: int
    ) -> str:
        logger = spare[profile].pop(0) if spare.get(profile) else None
        if logger is not None and not people[who].at_site(DEMO_LOGGER_SITE):
            # The courier depot owns the fleet; a site planning with one of its loggers borrows it first.
            await logger_registry.lend(
                pool, people["coordinator"], logger, route[0], f"demo: {route[0]} ships with it"
            )
        row = await shipments.create_shipment(
            pool,
            people[who],
            coi=coi,
            from_site=route[0],
            to_site=route[1],
            container_id=f"DEMO-{profile.upper()}-{number}",
            logger_id=logger,
            profile=profile,
            planned_departure=now - timedelta(minutes=30),
            planned_arrival=now + timedelta(hours=hours),
            unit_ids=units,
            seals=[f"SEAL-{number:04d}"],
            waybill=f"WB-DEMO-{number}",
        )
        return row.id

    # 1. Fresh material in transit to manufacturing.
    coi, aph = await collected("DEMO-001")
    first = await ship("coordinator", coi, [aph], ("USZ-APH", "CTA"), "fresh", 4, 1)
    await scan("nurse", Action.PACK, "USZ-APH", first, aph)
    await scan("courier", Action.PICKUP, "USZ-APH", first)
    # 2. Packed, waiting for the courier (the courier page picks it up).
    coi, aph = await collected("DEMO-002")
    second = await ship("coordinator", coi, [aph], ("USZ-APH", "CTA"), "fresh", 5, 2)
    await scan("nurse", Action.PACK, "USZ-APH", second, aph)
    # 3. Manufactured, released and on its way back cryopreserved (the receipt desk receives it).
    coi, aph = await collected("DEMO-003")
    inbound = await ship("coordinator", coi, [aph], ("USZ-APH", "CTA"), "crt", 4, 3)
    await scan("nurse", Action.PACK, "USZ-APH", inbound, aph)
    await scan("courier", Action.PICKUP, "USZ-APH", inbound)
    await scan("manufacturing", Action.RECEIVE, "CTA", inbound)
    await scan("manufacturing", Action.RECEIVE, "CTA", inbound, aph)
    checklist = {"seals_intact": True, "shipper_intact": True, "temperature_reviewed": True}
    await shipments.decide_receipt(
        pool,
        people["manufacturing"],
        inbound,
        accept=True,
        checklist=checklist,
        comment=None,
        password=DEMO_PASSWORD,
    )
    product = await cases.create_unit(
        pool,
        people["manufacturing"],
        coi,
        kind="PRC",
        product="Autologous CAR-T cells, cryopreserved",
        din=None,
        expires_at=now + timedelta(days=180),
        site="CTA",
        from_units=[aph],
    )
    await scan("manufacturing", Action.LABEL, "CTA", product.id)
    await cases.release_unit(pool, people["qa"], product.id, password=DEMO_PASSWORD)
    outbound = await ship("manufacturing", coi, [product.id], ("CTA", "USZ"), "cryo", 6, 4)
    await scan("manufacturing", Action.PACK, "CTA", outbound, product.id)
    await scan("courier", Action.PICKUP, "CTA", outbound)
    await _relations(pool, people, second, coi)
    log.info("demo journeys in place", extra={"shipments": [first, second, outbound]})


async def _relations(pool: Pool, people: dict[str, Principal], leg: str, coi: str) -> None:
    """The packed leg waiting for its pickup is CryoCourier's; the case made at CTA is Biotech A's."""
    from backend.services import organisations

    await organisations.assign_courier(
        pool, people["coordinator"], leg, "CRYOCOURIER", "demo: booked carrier"
    )
    await organisations.set_case_client(pool, people["manufacturing"], coi, "BIOTECH-A")
