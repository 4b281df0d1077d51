"""Who may do what, where: roles, the signed-in principal and route policies. Pure: no I/O."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec


class Role(enum.StrEnum):
    COURIER = "courier"
    PHARMACIST = "pharmacist"
    COORDINATOR = "coordinator"
    MANUFACTURING = "manufacturing"
    QA = "qa"
    ADMIN = "admin"
    # The firmware bridge's service account: may only deliver telemetry.
    BRIDGE = "bridge"


PEOPLE_ROLES = frozenset(Role) - {Role.BRIDGE}
# Who reads a whole case record: not couriers (they need shipments, not the record) nor service accounts.
RECORD_READERS = (Role.COORDINATOR, Role.QA, Role.PHARMACIST, Role.MANUFACTURING, Role.ADMIN)


class OrganisationKind(enum.StrEnum):
    HOSPITAL = "hospital"
    MANUFACTURER = "manufacturer"
    COURIER = "courier"
    CLIENT = "client"


# Users of these organisations see a record only through their organisation's relation to it (a leg
# assigned to their courier company, a case made for their client), never through the sites they are
# bound to: a courier company's driver bound to a depot must not see every leg through that depot.
BY_RELATION_ONLY = frozenset({OrganisationKind.COURIER, OrganisationKind.CLIENT})
# Methods that change nothing: the only ones a client's users may call (they follow, they never act).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A manufacturer's people who follow the cases it makes at any of its sites, not only the sites they are
# bound to: those who make the product and release it.
MAKERS = frozenset({Role.MANUFACTURING, Role.QA})


class Principal(msgspec.Struct, frozen=True):
    user_id: int
    username: str
    full_name: str
    roles: frozenset[Role]
    sites: frozenset[str]
    # None for a user of no organisation: today's rule (site binding) then applies unchanged.
    organisation: str | None = None
    organisation_kind: OrganisationKind | None = None

    @property
    def by_relation_only(self) -> bool:
        return self.organisation_kind in BY_RELATION_ONLY

    @property
    def read_only(self) -> bool:
        return self.organisation_kind is OrganisationKind.CLIENT

    def carries(self, courier_organisation: str | None) -> bool:
        """A leg assigned to this user's courier company."""
        return (
            self.organisation_kind is OrganisationKind.COURIER
            and courier_organisation is not None
            and courier_organisation == self.organisation
        )

    @property
    def courier_company(self) -> str | None:
        """This user's courier company, whose legs (and their alerts) they see; None for anyone else."""
        return self.organisation if self.organisation_kind is OrganisationKind.COURIER else None

    @property
    def maker(self) -> str | None:
        """The manufacturer organisation whose cases this user sees at any of its sites ("made by"): only
        its manufacturing and QA people; None for anyone else."""
        if self.organisation_kind is not OrganisationKind.MANUFACTURER:
            return None
        return self.organisation if self.has_any(MAKERS) else None

    def is_client_of(self, client_organisation: str | None) -> bool:
        """A case made for this user's client organisation."""
        return (
            self.organisation_kind is OrganisationKind.CLIENT
            and client_organisation is not None
            and client_organisation == self.organisation
        )

    def has_any(self, roles: frozenset[Role]) -> bool:
        return not self.roles.isdisjoint(roles)

    def at_site(self, site_code: str) -> bool:
        return site_code in self.sites

    def sees(self, record_sites: Iterable[str]) -> bool:
        """A record is visible to people bound to one of the sites it concerns; administrators see all.
        Users of a courier company or a client see nothing by site (`carries`, `is_client_of`)."""
        if self.by_relation_only:
            return False
        return Role.ADMIN in self.roles or not self.sites.isdisjoint(record_sites)


class Policy(msgspec.Struct, frozen=True):
    """Declared on every route. `site_param` names the path parameter holding a site code; the caller
    must then be bound to that site unless one of their roles is in `any_site`."""

    roles: frozenset[Role]
    site_param: str | None = None
    any_site: frozenset[Role] = frozenset()

    def denial(self, principal: Principal, path_params: dict[str, object], method: str = "GET") -> str | None:
        """None when allowed, otherwise the reason, phrased for the person refused."""
        if principal.read_only and method.upper() not in SAFE_METHODS and not self.roles >= PEOPLE_ROLES:
            # Routes open to every person (sign-out, one's own password) concern only the caller.
            return "a client organisation's users may read, not act"
        if not principal.has_any(self.roles):
            wanted = ", ".join(sorted(self.roles))
            mine = ", ".join(sorted(principal.roles)) or "none"
            return f"this action needs one of the roles {wanted}; you have {mine}"
        if self.site_param is None or principal.has_any(self.any_site):
            return None
        site = str(path_params.get(self.site_param, ""))
        if not principal.at_site(site):
            return f"you are not assigned to site {site}"
        return None


def policy(*roles: Role, site_param: str | None = None, any_site: tuple[Role, ...] = ()) -> dict[str, Policy]:
    """Route `opt=` value declaring who may call it."""
    return {"policy": Policy(frozenset(roles), site_param, frozenset(any_site))}


PUBLIC: dict[str, bool] = {"public": True}
