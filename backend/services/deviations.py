"""Deviations: QA's record of something that departed from the process (an excursion accepted with an
override, a late hand-over, a label reprinted) with its description, impact and disposition, linked to the
custody events it concerns. A deviation is itself a custody event of the case, signed by QA ('deviation
recorded'), so it is in the chain, the timeline and the record, and cannot be edited afterwards — a later
decision is a new deviation naming the same events."""

from __future__ import annotations

from backend.db.types import Pool
from backend.domain.access import Principal, Role
from backend.domain.custody import Refusal
from backend.domain.errors import InvalidInput, PermissionDenied
from backend.services import chain as chains
from backend.services import objects, signing
from backend.services.outbox_events import announce

DEVIATION = "deviation"
DISPOSITIONS = ("pending", "use as is", "rework", "reject")


async def record_deviation(
    pool: Pool,
    actor: Principal,
    coi_text: str,
    *,
    description: str,
    impact: str,
    disposition: str,
    event_ids: list[int],
    password: str,
) -> chains.Appended:
    if disposition not in DISPOSITIONS:
        raise InvalidInput(
            f"disposition is one of {', '.join(DISPOSITIONS)}", field_errors={"disposition": "unknown"}
        )
    async with pool.acquire() as conn, conn.transaction():
        case = await objects.case(conn, actor, coi_text)
        for event_id in sorted(set(event_ids)):
            # Through the gate: an event of a case the caller cannot see is as unknown as a missing one.
            owner, _action = await objects.event(conn, actor, event_id)
            if owner.coi != case.coi:
                raise InvalidInput(
                    f"event {event_id} belongs to another case; a deviation links events of its own case",
                    field_errors={"event_ids": "another case"},
                )
        site = next((s for s in [case.treatment_site, *case.sites] if actor.at_site(s)), None)
        if site is None:
            raise PermissionDenied("a deviation is recorded by QA bound to one of the case's sites")
        chain = await chains.lock(conn, case.coi)
        at = chains.now()
        try:
            signature = await signing.sign(
                conn, actor.username, password, "deviation recorded", frozenset({Role.QA}), at, site
            )
        except Refusal as refusal:
            raise InvalidInput(refusal.detail, field_errors={"password": "wrong"}) from None
        appended = await chains.append(
            conn,
            chain,
            action=DEVIATION,
            actor=actor,
            site=site,
            detail=f"deviation ({disposition}): {description}",
            data={
                "description": description,
                "impact": impact,
                "disposition": disposition,
                "events": sorted(set(event_ids)),
            },
            signatures=[signature],
            server_time=at,
        )
        await announce(
            conn, "event", case.sites, case.coi, {"event_id": appended.event_id, "action": DEVIATION}
        )
    return appended
