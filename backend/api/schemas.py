"""Request and response bodies of the API. Inbound commands forbid unknown fields so a typo is an error,
not a silently ignored value."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

Username = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$", examples=["pharm.zurich"])
]
SiteCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9_-]{1,31}$", examples=["USZ"])]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=1000)]
SiteKind = Literal["hospital", "apheresis", "manufacturing", "courier_depot"]
RoleName = Literal["courier", "pharmacist", "coordinator", "manufacturing", "qa", "admin", "bridge"]


class Command(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class LoginRequest(Command):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Password


class Me(msgspec.Struct, kw_only=True):
    username: str
    full_name: str
    roles: list[str]
    sites: list[str]


class LoginResponse(msgspec.Struct, kw_only=True):
    token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_at: datetime
    user: Me


class PasswordChange(Command):
    new_password: Password
    current_password: Password | None = None
    reason: Reason = "password change"


class Unlock(Command):
    reason: Reason = "unlocked by an administrator"


class UnlockResult(msgspec.Struct, kw_only=True):
    username: str
    lockouts_lifted: int


class UserCreate(Command):
    username: Username
    full_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    password: Password
    roles: Annotated[list[RoleName], msgspec.Meta(min_length=1)]
    sites: Annotated[list[SiteCode], msgspec.Meta(min_length=1)]


class UserUpdate(Command):
    reason: Reason
    full_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    active: bool | None = None
    roles: Annotated[list[RoleName], msgspec.Meta(min_length=1)] | None = None
    sites: Annotated[list[SiteCode], msgspec.Meta(min_length=1)] | None = None


class UserRead(msgspec.Struct, kw_only=True):
    username: str
    full_name: str
    active: bool
    roles: list[str]
    sites: list[str]


class SiteCreate(Command):
    code: SiteCode
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    kind: SiteKind
    time_zone: Annotated[str, msgspec.Meta(examples=["Europe/Zurich"])]
    gln: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{13}$")] | None = None


class SiteRead(msgspec.Struct, kw_only=True):
    code: str
    name: str
    kind: str
    time_zone: str
    gln: str | None


class AuditEntryRead(msgspec.Struct, kw_only=True):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    old_value: object | None
    new_value: object | None
    reason: str | None
    # The sites the entry concerns; empty: global administration, read by administrators only.
    sites: list[str] = []


class ComponentHealth(msgspec.Struct, kw_only=True):
    ok: bool
    detail: str


class Health(msgspec.Struct, kw_only=True):
    status: Literal["ok", "degraded", "down"]
    version: str
    database: ComponentHealth
    broker: ComponentHealth
