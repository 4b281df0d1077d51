"""The object gate for planning: a case is visible to the sites it concerns and, once ordered, to the
sites of its live order too (the manufacturing site sees a case it is asked to make before any bag
reaches it). Anything else is answered exactly as `backend.services.objects.case` answers a case that
does not exist."""

from __future__ import annotations

from backend.db.repo import cases
from backend.db.repo import planning as repo
from backend.db.repo.cases import CaseRow
from backend.db.repo.planning import OrderRow
from backend.db.types import Conn
from backend.domain.access import Principal
from backend.domain.errors import NotFound, PermissionDenied
from backend.services import objects


async def case(
    conn: Conn, principal: Principal, coi: str, lock_order: bool = False
) -> tuple[CaseRow, OrderRow | None]:
    found = await cases.get_case(conn, coi)
    order = await repo.live_order(conn, coi, lock=lock_order) if found is not None else None
    if found is None or not (
        objects.sees_case(principal, found) or (order is not None and principal.sees(order.sites))
    ):
        raise NotFound(f"no case with COI {coi}")
    return found, order


def require_site(principal: Principal, sites: list[str], what: str) -> None:
    """After the gate: the caller must be bound to one of `sites` to do `what` (administrators may)."""
    if not principal.sees(sites):
        raise PermissionDenied(
            f"{what} is done by {' or '.join(sorted(set(sites)))}; you are not assigned there"
        )
