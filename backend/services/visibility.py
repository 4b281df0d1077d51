"""What a signed-in person may see: records of the sites they are bound to (administrators: all)."""

from __future__ import annotations

from backend.domain.access import Principal, Role
from backend.domain.errors import NotFound


def site_filter(principal: Principal) -> list[str] | None:
    """None means no restriction."""
    return None if Role.ADMIN in principal.roles else sorted(principal.sites)


def require_visible(principal: Principal, sites: list[str], what: str) -> None:
    # Answer "not found" rather than "forbidden": the existence of another site's case is itself private.
    allowed = site_filter(principal)
    if allowed is not None and not set(allowed) & set(sites):
        raise NotFound(f"no {what} visible to you")


def sees_patient_fields(principal: Principal, treatment_site: str) -> bool:
    return principal.at_site(treatment_site) and principal.has_any(
        frozenset({Role.PHARMACIST, Role.COORDINATOR})
    )
