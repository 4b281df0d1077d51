"""Request and response bodies of the API. Inbound commands forbid unknown fields so a typo is an error,
not a silently ignored value, and bound every string, list and map, so no field can carry megabytes into
the database, the audit trail or the logs (tests/unit/test_inbound_bounds.py keeps it so)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

Username = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$", examples=["pharm.zurich"])
]
SiteCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9_-]{1,31}$", examples=["USZ"])]
# The same shape as a site code: short, upper case, safe in any path.
OrganisationCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9_-]{1,31}$", examples=["USZ-ORG"])]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=1000)]
# The common bounds of inbound fields: a person's or thing's name, free text, one scanned or typed code.
NAME_MAX: Final = 200
TEXT_MAX: Final = 2000
# Lists of sites or codes in one command; a user's sites are at most this many too.
LIST_MAX: Final = 100
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64, examples=["Europe/Zurich"])]
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


Roles = Annotated[list[RoleName], msgspec.Meta(min_length=1, max_length=10)]
Sites = Annotated[list[SiteCode], msgspec.Meta(min_length=1, max_length=LIST_MAX)]


class UserCreate(Command):
    username: Username
    full_name: Name
    password: Password
    roles: Roles
    sites: Sites


class UserUpdate(Command):
    reason: Reason
    full_name: Name | None = None
    active: bool | None = None
    roles: Roles | None = None
    sites: Sites | None = None


class UserRead(msgspec.Struct, kw_only=True):
    username: str
    full_name: str
    active: bool
    roles: list[str]
    sites: list[str]


class SiteCreate(Command):
    code: SiteCode
    name: Name
    kind: SiteKind
    time_zone: TimeZone
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


class Health(msgspec.Struct, kw_only=True, omit_defaults=True):
    status: Literal["ok", "degraded", "down"]
    # Only for a caller with a valid token: the version and the broker's address help an attacker more
    # than a load balancer, which needs the status (and the status code) alone.
    version: str | None = None
    database: ComponentHealth | None = None
    broker: ComponentHealth | None = None
