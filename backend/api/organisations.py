"""Organisations (docs/organisations.md): hospitals, manufacturers, courier companies and clients, the
sites and users they own, a leg's courier company and a case's client."""

from __future__ import annotations

import msgspec
from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from backend.api.reads import read, reads
from backend.api.schemas import Command, Name, OrganisationCode, Reason
from backend.db.types import Pool
from backend.domain.access import PEOPLE_ROLES, OrganisationKind, Principal, Role, policy
from backend.services import organisations

PLANNERS = tuple(organisations.PLANNERS)


class OrganisationCreate(Command):
    code: OrganisationCode
    name: Name
    kind: OrganisationKind


class OrganisationRead(msgspec.Struct, kw_only=True):
    code: str
    name: str
    kind: str
    sites: list[str]


class Membership(Command):
    """The organisation a site or user belongs to; null to belong to none."""

    organisation: OrganisationCode | None


class CourierAssignment(Command):
    """The courier company that carries the leg; null to take the leg back from it."""

    organisation: OrganisationCode | None
    reason: Reason


class CaseClient(Command):
    organisation: OrganisationCode


class CourierRead(msgspec.Struct, kw_only=True):
    shipment_id: str
    courier_organisation: str | None


class ClientRead(msgspec.Struct, kw_only=True):
    coi: str
    client_organisation: str | None


class OrganisationsController(Controller):
    path = "/api/v1"
    tags = ("organisations",)

    @get("/organisations", opt=policy(Role.ADMIN), operation_id="listOrganisations")
    async def list_organisations(self, pool: NamedDependency[Pool]) -> list[OrganisationRead]:
        return reads(await organisations.list_all(pool), OrganisationRead)

    @post("/organisations", opt=policy(Role.ADMIN), operation_id="createOrganisation")
    async def create_organisation(
        self,
        data: JSONBody[OrganisationCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> OrganisationRead:
        created = await organisations.create(pool, principal, data.code, data.name, data.kind)
        return read(created, OrganisationRead)

    @put("/sites/{site_code:str}/organisation", opt=policy(Role.ADMIN), operation_id="setSiteOrganisation")
    async def set_site_organisation(
        self,
        site_code: FromPath[str],
        data: JSONBody[Membership],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Membership:
        await organisations.set_site_organisation(pool, principal, site_code, data.organisation)
        return data

    @put("/users/{username:str}/organisation", opt=policy(Role.ADMIN), operation_id="setUserOrganisation")
    async def set_user_organisation(
        self,
        username: FromPath[str],
        data: JSONBody[Membership],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Membership:
        await organisations.set_user_organisation(pool, principal, username, data.organisation)
        return data

    @put("/shipments/{shipment_id:str}/courier", opt=policy(*PLANNERS), operation_id="assignCourier")
    async def assign_courier(
        self,
        shipment_id: FromPath[str],
        data: JSONBody[CourierAssignment],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> CourierRead:
        """Hand the leg to a courier company: its users then see and scan this leg, and no other."""
        leg = await organisations.assign_courier(pool, principal, shipment_id, data.organisation, data.reason)
        return CourierRead(shipment_id=leg.id, courier_organisation=leg.courier_organisation)

    @put("/cases/{coi:str}/client", opt=policy(*PLANNERS), operation_id="setCaseClient")
    async def set_case_client(
        self,
        coi: FromPath[str],
        data: JSONBody[CaseClient],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> ClientRead:
        """Name the client the case is made for (once): its users may then follow the case, without the
        patient's identity."""
        found = await organisations.set_case_client(pool, principal, coi, data.organisation)
        return ClientRead(coi=coi, client_organisation=found.code)

    @get("/cases/{coi:str}/client", opt=policy(*PEOPLE_ROLES), operation_id="getCaseClient")
    async def case_client(
        self, coi: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> ClientRead:
        return ClientRead(coi=coi, client_organisation=await organisations.case_client(pool, principal, coi))
