"""Opening a case, in the caller's transaction: its COI numbered, its row, its trial or product kind, the
`case_created` event that starts its chain and the audit entry. Autologous and trial cases
(`cases.create_case`), allogeneic batches and recipients (`allocation`) all open here; each caller checks
who may open one and announces it."""

from __future__ import annotations

from typing import Any

import msgspec

from backend.db.repo import allocations, audit, cases, sites
from backend.db.types import Conn
from backend.domain.access import Principal
from backend.domain.errors import InvalidInput
from backend.domain.trials import Trial
from backend.services import chain as chains
from backend.services import trials
from celltrail_shared.identifiers import Coi


class NewCase(msgspec.Struct, frozen=True, kw_only=True):
    treatment_site: str
    therapy: str
    fin: str
    patient_ref: str | None = None
    birth_year: int | None = None
    trial: Trial | None = None
    # None for the autologous case (the column's default); else an allogeneic batch or recipient.
    product_kind: str | None = None
    # The request field an unknown site is reported under.
    site_field: str = "treatment_site"


async def open_case(conn: Conn, actor: Principal, new: NewCase) -> str:
    """Must run inside a transaction; returns the new case's COI."""
    site, therapy = new.treatment_site, new.therapy
    if await sites.get(conn, site) is None:
        raise InvalidInput(f"unknown site {site}", field_errors={new.site_field: "unknown"})
    number = await cases.next_coi_number(conn)
    coi = Coi(fin=new.fin, year=f"{chains.now().year % 100:02d}", sequence=trials.coi_sequence(number)).value
    await cases.insert_case(conn, coi, site, therapy, new.patient_ref, new.birth_year, actor.user_id)
    data: dict[str, Any] = {"therapy": therapy, "treatment_site": site}
    data.update(await trials.attach(conn, coi, new.trial))
    opened = "case"
    if new.product_kind is not None:
        await allocations.set_product_kind(conn, coi, new.product_kind)
        data["product_kind"] = new.product_kind
        opened = f"{new.product_kind.replace('_', ' ')} case"
    await chains.append(
        conn,
        await chains.lock(conn, coi),
        action="case_created",
        actor=actor,
        site=site,
        detail=f"{opened} opened for {therapy} at {site}",
        data=data,
    )
    audited = {"treatment_site": site, "therapy": therapy}
    if new.product_kind is not None:
        audited["product_kind"] = new.product_kind
    await audit.record(
        conn,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="create",
        entity="case",
        entity_id=coi,
        new_value=audited,
    )
    return coi
