"""Sites: hospitals, apheresis units, manufacturing sites and courier depots."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from backend.api.reads import read, reads
from backend.api.schemas import Command, SiteCreate, SiteRead, UserRead
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import accounts, patient_identity
from backend.services.patient_identity import Field


class WristbandPolicy(Command):
    """Which of the patient's name, date of birth and hospital number the site's wristbands print
    (none by default); the server fills them from the case's encrypted identity."""

    fields: Annotated[list[Field], msgspec.Meta(max_length=3)]


class SitesController(Controller):
    path = "/api/v1/sites"
    tags = ("sites",)

    @get("/", opt=policy(*Role), operation_id="listSites")
    async def list_sites(self, pool: NamedDependency[Pool]) -> list[SiteRead]:
        """Every site (names and codes are needed to address shipments)."""
        return reads(await accounts.list_sites(pool), SiteRead)

    @post("/", opt=policy(Role.ADMIN), operation_id="createSite")
    async def create_site(
        self, data: JSONBody[SiteCreate], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> SiteRead:
        site = await accounts.add_site(
            pool,
            principal,
            code=data.code,
            name=data.name,
            kind=data.kind,
            time_zone=data.time_zone,
            gln=data.gln,
        )
        return read(site, SiteRead)

    @get("/{site_code:str}", opt=policy(*Role), operation_id="getSite")
    async def get_site(self, site_code: FromPath[str], pool: NamedDependency[Pool]) -> SiteRead:
        return read(await accounts.get_site(pool, site_code), SiteRead)

    @get(
        "/{site_code:str}/users",
        operation_id="listSiteUsers",
        opt=policy(Role.ADMIN, Role.COORDINATOR, site_param="site_code", any_site=(Role.ADMIN,)),
    )
    async def site_users(self, site_code: FromPath[str], pool: NamedDependency[Pool]) -> list[UserRead]:
        """Who works at a site: admins anywhere, coordinators at their own sites."""
        await accounts.get_site(pool, site_code)
        return reads(await accounts.list_users(pool, site_code), UserRead)

    @get("/{site_code:str}/wristband-policy", opt=policy(*Role), operation_id="getWristbandPolicy")
    async def wristband_policy(
        self, site_code: FromPath[str], pool: NamedDependency[Pool]
    ) -> WristbandPolicy:
        """What the site's wristbands print of the patient's identity."""
        return WristbandPolicy(fields=await patient_identity.wristband_policy(pool, site_code))

    @put(
        "/{site_code:str}/wristband-policy",
        operation_id="setWristbandPolicy",
        opt=policy(Role.ADMIN, Role.COORDINATOR, site_param="site_code", any_site=(Role.ADMIN,)),
    )
    async def set_wristband_policy(
        self,
        site_code: FromPath[str],
        data: JSONBody[WristbandPolicy],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> WristbandPolicy:
        """Set what the site's wristbands print: administrators anywhere, coordinators at their own
        sites; kept in the audit trail."""
        chosen = await patient_identity.set_wristband_policy(pool, principal, site_code, data.fields)
        return WristbandPolicy(fields=chosen)
