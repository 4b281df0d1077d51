"""The product catalogue: each planning product (therapy) declares, beside its lead times, the limits its
bags are held to: the thaw-to-infusion window, the storage range and the shelf life (docs/planning.md).

Who may change a product's limits: QA bound to a site that makes it (manufacturing capacity declared for
the product there), or an administrator. Each change is in the audit trail with the old and new values
and the reason; a refused attempt is too."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from backend.db.repo import audit, products
from backend.db.repo import planning as repo
from backend.db.repo.products import ProductLimits
from backend.db.types import Conn, Pool
from backend.domain.access import Principal, Role
from backend.domain.errors import InvalidInput, NotFound, PermissionDenied
from backend.services import security_log
from backend.services.planning.milestones import LeadTimes


class CatalogueProduct(LeadTimes, frozen=True, kw_only=True):
    """A product's lead times and its limits."""

    thaw_to_infusion_min: int
    storage_min_c: int
    storage_max_c: int
    shelf_life_days: int


class LimitsChange(msgspec.Struct, frozen=True, kw_only=True):
    thaw_to_infusion_min: int
    storage_min_c: int
    storage_max_c: int
    shelf_life_days: int
    reason: str


async def catalogue(pool: Pool) -> list[CatalogueProduct]:
    async with pool.acquire() as conn:
        leads = await repo.products(conn)
        limits = await products.all_limits(conn)
    found = []
    for lead in leads:
        limit = limits[lead.code]
        found.append(
            CatalogueProduct(
                **msgspec.structs.asdict(lead),
                thaw_to_infusion_min=limit.thaw_to_infusion_min,
                storage_min_c=limit.storage_min_c,
                storage_max_c=limit.storage_max_c,
                shelf_life_days=limit.shelf_life_days,
            )
        )
    return found


class _Refused(Exception):
    def __init__(self, why: str) -> None:
        self.why = why


async def set_limits(pool: Pool, principal: Principal, code: str, change: LimitsChange) -> ProductLimits:
    if change.storage_min_c >= change.storage_max_c:
        raise InvalidInput(
            f"the storage range must run from a lower to a higher temperature ({change.storage_min_c} °C "
            f"to {change.storage_max_c} °C does not)",
            field_errors={"storage_max_c": "not above storage_min_c"},
        )
    try:
        return await _set_limits(pool, principal, code, change)
    except _Refused as refused:
        await security_log.refused(
            pool,
            principal,
            action="catalogue_change_refused",
            entity="planning_product",
            entity_id=code,
            why=refused.why,
            what={"product": code},
        )
        raise PermissionDenied(
            f"the limits of product {code} are changed by QA of a site that makes it, or an administrator"
        ) from None


async def _set_limits(pool: Pool, principal: Principal, code: str, change: LimitsChange) -> ProductLimits:
    async with pool.acquire() as conn, conn.transaction():
        before = await products.limits(conn, code, lock=True)
        if before is None:
            raise NotFound(f"no product {code!r} in the catalogue")
        makers = await products.manufacturing_sites(conn, code)
        if Role.ADMIN not in principal.roles and not (
            Role.QA in principal.roles and principal.sites & set(makers)
        ):
            raise _Refused("not QA of a site that makes the product")
        after = await products.set_limits(
            conn,
            code,
            thaw_to_infusion_min=change.thaw_to_infusion_min,
            storage_min_c=change.storage_min_c,
            storage_max_c=change.storage_max_c,
            shelf_life_days=change.shelf_life_days,
        )
        assert after is not None  # the row is locked above
        await audit.record(
            conn,
            actor_id=principal.user_id,
            actor_name=principal.username,
            action="update",
            entity="planning_product",
            entity_id=code,
            old_value=_values(before),
            new_value=_values(after),
            reason=change.reason,
            sites=makers,
        )
    return after


def _values(limits: ProductLimits) -> dict[str, int]:
    return {
        "thaw_to_infusion_min": limits.thaw_to_infusion_min,
        "storage_min_c": limits.storage_min_c,
        "storage_max_c": limits.storage_max_c,
        "shelf_life_days": limits.shelf_life_days,
    }


# --------------------------------------------------------------------------- a product bag's registration


async def unit_product(conn: Conn, coi: str, named: str | None) -> ProductLimits | None:
    """The catalogue product of a product bag being registered: the one the case's live order names, or
    the one the registration names (which must then agree with the order). None: neither names one."""
    ordered = await products.ordered_product(conn, coi)
    if named is not None and ordered is not None and named != ordered:
        raise InvalidInput(
            f"case {coi} is ordered for product {ordered}, not {named}",
            field_errors={"catalogue_product": "not the ordered product"},
        )
    code = named or ordered
    if code is None:
        return None
    found = await products.limits(conn, code)
    if found is None:
        raise InvalidInput(
            f"no product {code!r} in the catalogue", field_errors={"catalogue_product": "unknown"}
        )
    return found


def unit_expiry(limits: ProductLimits, manufactured_at: datetime, asked: datetime | None) -> datetime:
    """A product bag's expiry: its manufacture plus the product's shelf life, or an earlier one the
    registration gives. A later one than the shelf life allows is refused, as is one before manufacture."""
    latest = manufactured_at + timedelta(days=limits.shelf_life_days)
    if asked is None:
        return latest
    if asked > latest:
        raise InvalidInput(
            f"expires_at {asked.isoformat()} is later than product {limits.code} allows: made "
            f"{manufactured_at.isoformat()} with a shelf life of {limits.shelf_life_days} days, it expires "
            f"at the latest {latest.isoformat()}",
            field_errors={"expires_at": "beyond the product's shelf life"},
        )
    if asked <= manufactured_at:
        raise InvalidInput(
            f"expires_at {asked.isoformat()} is not after the bag's manufacture "
            f"({manufactured_at.isoformat()})",
            field_errors={"expires_at": "before manufacture"},
        )
    return asked
