"""Temperature profiles: list, read one (a version), propose a new version and approve or refuse it.

Network profiles are visible to everyone, a site's profiles to its people; a profile the caller may not
see is answered as one that does not exist. A new version is pending until a second QA person of the
owner site (an administrator for a network profile) approves it with an e-signature
(backend/services/profiles.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from backend.api.cases import PEOPLE
from backend.api.schemas import Command, Password, Reason, SiteCode
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import profiles
from backend.services.profiles import ProfileView

# Who proposes and decides is narrowed further by the profile's owner (the service checks it).
STEWARDS = (Role.QA, Role.ADMIN)


class ProfileVersionCreate(Command):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    # Checked against backend.domain.excursions.ProfileDefinition (limits, delays, rules).
    definition: dict[str, Any]
    reason: Reason | None = None
    # The owner of a new profile; by default the proposer's only site (an administrator's: the network).
    site: SiteCode | None = None


class ProfileApproval(Command):
    # The approver's password, re-entered: the approval is an e-signature with the meaning "released".
    password: Password
    reason: Reason | None = None


class ProfileRefusal(Command):
    reason: Reason


class ProfilesController(Controller):
    path = "/api/v1/profiles"
    tags = ("profiles",)

    @get("/", opt=policy(*PEOPLE), operation_id="listProfiles")
    async def list_profiles(
        self,
        pool: NamedDependency[Pool],
        principal: NamedDependency[Principal],
        all_versions: FromQuery[bool] = False,
    ) -> list[ProfileView]:
        """Each profile you may see as its approved version (or, before any approval, its newest), with its
        rules; every version, pending and refused ones too, with `all_versions=true`."""
        return await profiles.list_profiles(pool, principal, all_versions)

    @get("/{code:str}", opt=policy(*PEOPLE), operation_id="getProfile")
    async def get_profile(
        self, code: FromPath[str], pool: NamedDependency[Pool], principal: NamedDependency[Principal]
    ) -> ProfileView:
        return await profiles.get_profile(pool, principal, code, None)

    @get("/{code:str}/versions/{version:int}", opt=policy(*PEOPLE), operation_id="getProfileVersion")
    async def get_version(
        self,
        code: FromPath[str],
        version: FromPath[int],
        pool: NamedDependency[Pool],
        principal: NamedDependency[Principal],
    ) -> ProfileView:
        return await profiles.get_profile(pool, principal, code, version)

    @post("/{code:str}/versions", opt=policy(*STEWARDS), operation_id="createProfileVersion")
    async def create_version(
        self,
        code: FromPath[str],
        data: JSONBody[ProfileVersionCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> ProfileView:
        """Propose a new version of `code` (version 1 of a new code), by QA of the owner site or, for a
        network profile, an administrator. It is pending, and unused, until a second person approves it;
        shipments already planned keep the version they snapshotted."""
        return await profiles.propose_version(
            pool, principal, code, data.name, data.definition, data.reason, data.site
        )

    @post(
        "/{code:str}/versions/{version:int}/approve",
        opt=policy(*STEWARDS),
        operation_id="approveProfileVersion",
    )
    async def approve_version(
        self,
        code: FromPath[str],
        version: FromPath[int],
        data: JSONBody[ProfileApproval],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> ProfileView:
        """Approve a pending version, signed with your password: new shipments take it from now on. Not
        by its proposer; by QA of the owner site, or an administrator for a network profile."""
        return await profiles.approve_version(
            pool, principal, code, version, password=data.password, reason=data.reason
        )

    @post(
        "/{code:str}/versions/{version:int}/refuse",
        opt=policy(*STEWARDS),
        operation_id="refuseProfileVersion",
    )
    async def refuse_version(
        self,
        code: FromPath[str],
        version: FromPath[int],
        data: JSONBody[ProfileRefusal],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> ProfileView:
        """Refuse a pending version for good, with the reason; it is never used."""
        return await profiles.refuse_version(pool, principal, code, version, reason=data.reason)
