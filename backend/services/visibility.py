"""What a signed-in person may see in lists: records of the sites they are bound to (administrators: all);
users of a courier company or a client see no record by site, only their organisation's (their lists add
those by relation: a leg's courier company, a case's client).
One record named by its id goes through the object gate, `backend.services.objects`."""

from __future__ import annotations

from backend.domain.access import OrganisationKind, Principal, Role
from backend.domain.errors import NotFound


def site_filter(principal: Principal) -> list[str] | None:
    """None means no restriction."""
    if principal.by_relation_only:
        return []
    return None if Role.ADMIN in principal.roles else sorted(principal.sites)


def sees_patient_fields(principal: Principal, treatment_site: str) -> bool:
    # Only the treating organisation: never a manufacturer (it makes the product, it does not treat the
    # patient), a courier company or a client, whatever sites they were bound to.
    if principal.organisation_kind not in (None, OrganisationKind.HOSPITAL):
        return False
    return principal.at_site(treatment_site) and principal.has_any(
        frozenset({Role.PHARMACIST, Role.COORDINATOR})
    )


def require_visible(principal: Principal, sites: list[str], what: str) -> None:
    """For records already read by the caller; prefer the object gate's resolvers. The answer is worded
    as for a record that does not exist, so that the two cannot be told apart."""
    if not principal.sees(sites):
        raise NotFound(f"no {what}")
