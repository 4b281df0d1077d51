"""Cases, their units, the custody timeline, chain verification and corrections."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from backend.api.custody_schemas import (
    CaseCancellation,
    CaseCreate,
    CaseRead,
    CorrectionCreate,
    DeviationCreate,
    HoldDecision,
    Recorded,
    RecordReview,
    SampleCreate,
    SampleStorage,
    Signing,
    TrialRead,
    UnitCreate,
    UnitRead,
)
from backend.db.repo.cases import CaseRow, UnitRow
from backend.db.types import Pool
from backend.domain.access import PEOPLE_ROLES, Principal, Role, policy
from backend.domain.trials import Trial
from backend.services import cases, chain_verify, deviations, holds, samples
from backend.services import chain as chains
from backend.services.visibility import sees_patient_fields
from backend.settings import Settings
from celltrail_shared.identifiers import Coi

PEOPLE = tuple(PEOPLE_ROLES)


def case_read(case: CaseRow, principal: Principal) -> CaseRead:
    coi = Coi.from_value(case.coi)
    private = sees_patient_fields(principal, case.treatment_site)
    return CaseRead(
        coi=case.coi,
        barcode=coi.barcode,
        eye_readable=coi.eye_readable,
        treatment_site=case.treatment_site,
        therapy=case.therapy,
        status=case.status,
        created_at=case.created_at,
        events=case.chain_length,
        sites=case.sites,
        patient_ref=case.patient_ref if private else None,
        birth_year=case.birth_year if private else None,
        # The subject identifier is a pseudonym: everyone who sees the case sees it (its labels carry it).
        trial=TrialRead(**case.trial.as_data()) if case.trial else None,
    )


def unit_read(unit: UnitRow) -> UnitRead:
    return UnitRead(
        id=unit.id,
        coi=unit.coi,
        kind=unit.kind,
        din=unit.din,
        product=unit.product,
        expires_at=unit.expires_at,
        status=unit.status,
        site=unit.site,
        shipment_id=unit.shipment_id,
        storage_location=unit.storage_location,
        released=unit.released,
        quarantined=unit.quarantined,
        thawed_at=unit.thawed_at,
        product_code=unit.product_code,
        lot=unit.lot,
        volume=unit.volume,
        catalogue_product=unit.catalogue_product,
        manufactured_at=unit.manufactured_at,
        consent_ref=unit.consent_ref,
    )


def recorded(appended: chains.Appended) -> Recorded:
    return Recorded(
        event_id=appended.event_id, seq=appended.seq, hash=appended.hash, server_time=appended.server_time
    )


class CasesController(Controller):
    path = "/api/v1/cases"
    tags = ("cases",)

    @post("/", opt=policy(Role.COORDINATOR), operation_id="createCase")
    async def create_case(
        self,
        data: JSONBody[CaseCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        settings: NamedDependency[Settings],
    ) -> CaseRead:
        """Open a case (therapy order) and issue its COI (ISBT 128 data structure 040)."""
        case = await cases.create_case(
            pool,
            principal,
            treatment_site=data.treatment_site,
            therapy=data.therapy,
            patient_ref=data.patient_ref,
            birth_year=data.birth_year,
            fin=settings.fin,
            trial=Trial(**msgspec.structs.asdict(data.trial)) if data.trial else None,
            client=data.client_organisation,
        )
        return case_read(case, principal)

    @get("/", opt=policy(*PEOPLE), operation_id="listCases")
    async def list_cases(
        self,
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[CaseRead]:
        return [case_read(c, principal) for c in await cases.list_cases(pool, principal, limit)]

    @get("/{coi:str}", opt=policy(*PEOPLE), operation_id="getCase")
    async def get_case(
        self, coi: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> CaseRead:
        return case_read(await cases.get_case(pool, principal, coi), principal)

    @post(
        "/{coi:str}/units",
        opt=policy(Role.COORDINATOR, Role.PHARMACIST, Role.MANUFACTURING),
        operation_id="registerUnit",
    )
    async def register_unit(
        self,
        coi: FromPath[str],
        data: JSONBody[UnitCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> UnitRead:
        """Register a bag: starting material at collection, product bags at manufacturing (same COI)."""
        unit = await cases.create_unit(
            pool,
            principal,
            coi,
            kind=data.kind,
            product=data.product,
            din=data.din,
            expires_at=data.expires_at,
            site=data.site,
            from_units=data.from_units,
            product_code=data.product_code,
            lot=data.lot,
            volume=data.volume,
            catalogue_product=data.catalogue_product,
            manufactured_at=data.manufactured_at,
        )
        return unit_read(unit)

    @post(
        "/{coi:str}/samples",
        opt=policy(Role.COORDINATOR, Role.PHARMACIST, Role.MANUFACTURING),
        operation_id="registerSample",
    )
    async def register_sample(
        self,
        coi: FromPath[str],
        data: JSONBody[SampleCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> UnitRead:
        """Register a biobank sample of the case (kind SMP) with the consent it was taken under."""
        unit = await samples.register_sample(
            pool, principal, coi, description=data.description, site=data.site, consent_ref=data.consent_ref
        )
        return unit_read(unit)

    @get("/{coi:str}/timeline", opt=policy(*PEOPLE), operation_id="caseTimeline")
    async def timeline(
        self, coi: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> dict[str, Any]:
        """The whole vein-to-vein history in order, with signatures."""
        from backend.api.shipments import shipment_read

        found = await cases.timeline(pool, principal, coi)
        return {
            "case": case_read(found.case, principal),
            "units": [unit_read(u) for u in found.units],
            "shipments": [shipment_read(s) for s in found.shipments],
            "events": found.events,
            "genealogy": found.genealogy,
        }

    @get("/{coi:str}/verify", opt=policy(*PEOPLE), operation_id="verifyChain")
    async def verify(
        self,
        coi: FromPath[str],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        settings: NamedDependency[Settings],
    ) -> chain_verify.Verification:
        """Check the keyed chain with the server's keyring, against the latest external checkpoint, and
        replay it against the stored states; report the first broken link and every disagreement."""
        case = await cases.get_case(pool, principal, coi)
        return await cases.verify(pool, case.coi, settings.checkpoint_path)

    @post("/{coi:str}/cancel", opt=policy(Role.COORDINATOR, Role.QA), operation_id="cancelCase")
    async def cancel(
        self,
        coi: FromPath[str],
        data: JSONBody[CaseCancellation],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Recorded:
        """Cancel an open case, signed with the password and the reason; it then takes no custody steps
        but disposal of what is left."""
        appended = await cases.cancel_case(pool, principal, coi, reason=data.reason, password=data.password)
        return recorded(appended)

    @post("/{coi:str}/review", opt=policy(Role.QA), operation_id="reviewRecord")
    async def review(
        self,
        coi: FromPath[str],
        data: JSONBody[RecordReview],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Recorded:
        """QA signs the case's record as reviewed (meaning 'record reviewed'), as far as its chain reaches
        now; the record's review block shows the signature and what came after it."""
        appended = await cases.review_record(
            pool, principal, coi, password=data.password, comment=data.comment
        )
        return recorded(appended)

    @post("/{coi:str}/deviations", opt=policy(Role.QA), operation_id="recordDeviation")
    async def deviation(
        self,
        coi: FromPath[str],
        data: JSONBody[DeviationCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Recorded:
        """QA records a deviation (description, impact, disposition) linked to the case's events it
        concerns, signed ('deviation recorded'); it is a custody event of the case."""
        appended = await deviations.record_deviation(
            pool,
            principal,
            coi,
            description=data.description,
            impact=data.impact,
            disposition=data.disposition,
            event_ids=data.event_ids,
            password=data.password,
        )
        return recorded(appended)


class UnitsController(Controller):
    path = "/api/v1/units"
    tags = ("units",)

    @get("/{unit_id:str}", opt=policy(*PEOPLE), operation_id="getUnit")
    async def get_unit(
        self, unit_id: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> UnitRead:
        return unit_read(await cases.get_unit(pool, principal, unit_id))

    @post(
        "/{unit_id:str}/storage", opt=policy(Role.PHARMACIST, Role.MANUFACTURING), operation_id="storeSample"
    )
    async def store_sample(
        self,
        unit_id: FromPath[str],
        data: JSONBody[SampleStorage],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> UnitRead:
        """Store a biobank sample at a position (freezer, rack, box, position) or move it to another: a
        custody step `store` of the case's chain."""
        position = samples.Position(
            freezer=data.freezer, rack=data.rack, box=data.box, position=data.position
        )
        unit, _appended = await samples.store_sample(
            pool, principal, unit_id, site=data.site, position=position
        )
        return unit_read(unit)

    @post("/{unit_id:str}/release", opt=policy(Role.QA), operation_id="releaseUnit")
    async def release(
        self,
        unit_id: FromPath[str],
        data: JSONBody[Signing],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Recorded:
        """QA release of a product bag, signed with the meaning 'released'."""
        return recorded(await cases.release_unit(pool, principal, unit_id, password=data.password))

    @post("/{unit_id:str}/hold", opt=policy(Role.QA), operation_id="holdUnit")
    async def hold(
        self,
        unit_id: FromPath[str],
        data: JSONBody[HoldDecision],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Recorded:
        """QA puts a unit on hold (quarantine), signed with the password and the reason."""
        appended = await holds.change_hold(
            pool, principal, unit_id, hold=True, reason=data.reason, password=data.password
        )
        return recorded(appended)

    @post("/{unit_id:str}/hold/release", opt=policy(Role.QA), operation_id="releaseUnitHold")
    async def release_hold(
        self,
        unit_id: FromPath[str],
        data: JSONBody[HoldDecision],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Recorded:
        """QA releases a unit from hold or from a quarantine decided at receipt, signed, with the reason."""
        appended = await holds.change_hold(
            pool, principal, unit_id, hold=False, reason=data.reason, password=data.password
        )
        return recorded(appended)


class EventsController(Controller):
    path = "/api/v1/events"
    tags = ("cases",)

    @post("/{event_id:int}/corrections", opt=policy(Role.COORDINATOR, Role.QA), operation_id="correctEvent")
    async def correct(
        self,
        event_id: FromPath[int],
        data: JSONBody[CorrectionCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Recorded:
        """Record a correction as a new event referencing the corrected one; nothing is overwritten."""
        return recorded(
            await cases.correct(pool, principal, event_id, reason=data.reason, fields=data.fields)
        )
