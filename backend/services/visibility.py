"""What a signed-in person may see in lists: records of the sites they are bound to (administrators: all).
One record named by its id goes through the object gate, `backend.services.objects`."""

from __future__ import annotations

from backend.domain.access import Principal, Role
from backend.domain.errors import NotFound


def site_filter(principal: Principal) -> list[str] | None:
    """None means no restriction."""
    return None if Role.ADMIN in principal.roles else sorted(principal.sites)


def sees_patient_fields(principal: Principal, treatment_site: str) -> bool:
    return principal.at_site(treatment_site) and principal.has_any(
        frozenset({Role.PHARMACIST, Role.COORDINATOR})
    )


def require_visible(principal: Principal, sites: list[str], what: str) -> None:
    """For records already read by the caller; prefer the object gate's resolvers. The answer is worded
    as for a record that does not exist, so that the two cannot be told apart."""
    if not principal.sees(sites):
        raise NotFound(f"no {what}")
