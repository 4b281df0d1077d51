"""Temperature profiles: list, read one (a version), and create a new version (audited)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from backend.api.cases import PEOPLE
from backend.api.schemas import Command, Reason
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import excursions
from backend.services.excursions import ProfileView


class ProfileVersionCreate(Command):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    # Checked against backend.domain.excursions.ProfileDefinition (limits, delays, rules).
    definition: dict[str, Any]
    reason: Reason | None = None


class ProfilesController(Controller):
    path = "/api/v1/profiles"
    tags = ("profiles",)

    @get("/", opt=policy(*PEOPLE), operation_id="listProfiles")
    async def list_profiles(
        self, pool: NamedDependency[Pool], all_versions: FromQuery[bool] = False
    ) -> list[ProfileView]:
        """The newest version of each profile (every version with `all_versions=true`), with its rules."""
        return await excursions.list_profiles(pool, all_versions)

    @get("/{code:str}", opt=policy(*PEOPLE), operation_id="getProfile")
    async def get_profile(self, code: FromPath[str], pool: NamedDependency[Pool]) -> ProfileView:
        return await excursions.get_profile(pool, code, None)

    @get("/{code:str}/versions/{version:int}", opt=policy(*PEOPLE), operation_id="getProfileVersion")
    async def get_version(
        self, code: FromPath[str], version: FromPath[int], pool: NamedDependency[Pool]
    ) -> ProfileView:
        return await excursions.get_profile(pool, code, version)

    @post(
        "/{code:str}/versions",
        opt=policy(Role.COORDINATOR, Role.QA, Role.ADMIN),
        operation_id="createProfileVersion",
    )
    async def create_version(
        self,
        code: FromPath[str],
        data: JSONBody[ProfileVersionCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> ProfileView:
        """A new version of `code` (version 1 of a new code). Shipments already planned keep the version
        they snapshotted; new shipments take this one."""
        return await excursions.create_profile_version(
            pool, principal, code, data.name, data.definition, data.reason
        )
