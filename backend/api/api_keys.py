"""API keys of service accounts (administrators): create (the key is shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.api.schemas import Command, Reason, Username
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import api_keys

KeyName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["bridge on host-1"])]


class ApiKeyCreate(Command):
    username: Username
    name: KeyName


class ApiKeyRevoke(Command):
    reason: Reason = "revoked by an administrator"


class ApiKeyRead(msgspec.Struct, kw_only=True):
    id: int
    username: str
    name: str
    hint: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    active: bool


class ApiKeyCreated(msgspec.Struct, kw_only=True):
    id: int
    username: str
    name: str
    hint: str
    created_at: datetime
    key: str


def key_read(row: msgspec.Struct) -> ApiKeyRead:
    """A stored key as read: its fields, and whether it still signs in (not revoked)."""
    fields = msgspec.structs.asdict(row)
    return msgspec.convert({**fields, "active": fields["revoked_at"] is None}, ApiKeyRead)


class ApiKeysController(Controller):
    path = "/api/v1/api-keys"
    tags = ("users",)

    @get("/", opt=policy(Role.ADMIN), operation_id="listApiKeys")
    async def list_keys(
        self, pool: NamedDependency[Pool], username: FromQuery[str | None] = None
    ) -> list[ApiKeyRead]:
        """Every key (without its secret): account, name, created, last used (to the minute), revoked."""
        return [key_read(row) for row in await api_keys.list_keys(pool, username)]

    @post("/", opt=policy(Role.ADMIN), status_code=HTTP_201_CREATED, operation_id="createApiKey")
    async def create_key(
        self,
        data: JSONBody[ApiKeyCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> ApiKeyCreated:
        """A new key for a service account (role `bridge`). The answer holds the key: it is shown this
        once and kept only as a hash. Send it as `Authorization: Bearer ctk_...`."""
        issued = await api_keys.create_key(pool, principal, data.username, data.name)
        return ApiKeyCreated(
            id=issued.id,
            username=issued.username,
            name=issued.name,
            hint=issued.hint,
            created_at=issued.created_at,
            key=issued.key,
        )

    @post(
        "/{key_id:int}/revoke", opt=policy(Role.ADMIN), status_code=HTTP_200_OK, operation_id="revokeApiKey"
    )
    async def revoke_key(
        self,
        key_id: FromPath[int],
        data: JSONBody[ApiKeyRevoke],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> ApiKeyRead:
        """Revoke a key at once: the next request with it is refused (audited)."""
        return key_read(await api_keys.revoke_key(pool, principal, key_id, data.reason))
