"""A scan under its case's chain lock: applying an accepted step, or recording a refused one (in the chain,
with its alert, and in every other case a chain-of-identity mismatch involves); and the refusal of a scan
that names no case at all."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from backend.db.repo import cases, events, shipments
from backend.db.repo.outbox import Notice
from backend.domain.custody import Action, Change, Refusal
from backend.services import allocation
from backend.services import chain as chains
from backend.services.alerting import raise_alert, resolve_alert
from backend.services.outbox_events import announce
from backend.services.scan_outcomes import RECORD_MISMATCH, Accepted, Refused, ScanRefusal, refused

if TYPE_CHECKING:
    from backend.db.repo.cases import UnitRow
    from backend.db.repo.shipments import ShipmentRow
    from backend.db.types import Conn
    from backend.domain.access import Principal
    from backend.services.scans import ScanCommand

_CRITICAL_TITLES = {
    "coi_mismatch": "Chain of identity mismatch",
    RECORD_MISMATCH: "Stored state disagrees with the custody record",
}


class Context:
    def __init__(
        self,
        conn: Conn,
        actor: Principal,
        command: ScanCommand,
        chain: chains.LockedChain,
        shipment: ShipmentRow | None,
        units: list[UnitRow],
    ) -> None:
        self.conn = conn
        self.actor = actor
        self.command = command
        self.chain = chain
        self.coi = chain.coi
        self.shipment = shipment
        self.units = units
        self.other_cases: list[str] = []

    def _sites(self) -> list[str]:
        # The scan's site only when the caller belongs there: a claimed site is no address for alerts.
        sites = {self.command.site} if self.actor.at_site(self.command.site) else set()
        if self.shipment is not None:
            sites |= {self.shipment.from_site, self.shipment.to_site}
        sites |= {u.site for u in self.units if u.site}
        return sorted(sites)

    def _event_fields(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "site": self.command.site,
            "shipment_id": self.shipment.id if self.shipment else None,
            "codes": self.command.codes,
            "device_time": self.command.device_time,
            "gps": self.command.gps,
        }

    def _step_data(self, change: Change, receiver_id: int | None) -> tuple[dict[str, Any], int | None]:
        """What the step's event records beyond the scan itself, and who the custody passes to or from."""
        command = self.command
        if command.action is Action.STORE:
            if not command.storage_location:
                raise ScanRefusal(
                    "storage_location_required", "say where the unit is stored (storage_location)"
                )
            return {"storage_location": command.storage_location}, None
        if command.action is Action.DISPOSE:
            if not command.reason:
                raise ScanRefusal("reason_required", "give the reason for disposal")
            return {"reason": command.reason}, None
        if command.action is Action.HANDOVER:
            return {"handover_to": command.handover_to}, receiver_id
        taking = command.action in (Action.PICKUP, Action.RECEIVE) and change.take_custody
        return {}, self.shipment.holder_id if taking and self.shipment is not None else None

    async def accept(
        self, change: Change, receiver_id: int | None, signatures: list[Any], handover_minutes: int
    ) -> tuple[Accepted, Notice]:
        conn, command = self.conn, self.command
        unit_ids = sorted(set(change.unit_status) | {u.id for u in self.units})
        data, counterpart = self._step_data(change, receiver_id)
        appended = await chains.append(
            conn,
            self.chain,
            action=command.action.value,
            detail=change.detail,
            unit_ids=unit_ids,
            counterpart_id=counterpart,
            data=data,
            signatures=signatures,
            **self._event_fields(),
        )
        await self._apply(change, appended, receiver_id, handover_minutes)
        finishing = command.action in (Action.INFUSE, Action.DISPOSE)
        if finishing and await cases.complete_if_done(conn, self.coi):
            completed = {"coi": self.coi, "status": "completed"}
            await announce(conn, "case", self._sites(), self.coi, completed)
        if finishing:
            # A batch's bag given to (or destroyed for) a recipient may finish the recipient's own case.
            await allocation.complete_recipients(conn, self.actor, command.site, unit_ids)
        return self._accepted(change, appended, unit_ids)

    def _accepted(
        self, change: Change, appended: chains.Appended, unit_ids: list[str]
    ) -> tuple[Accepted, Notice]:
        statuses = {u.id: change.unit_status.get(u.id, u.status) for u in self.units}
        if self.shipment is not None:
            for unit_id in self.shipment.manifest:
                statuses.setdefault(unit_id, change.unit_status.get(unit_id, "planned"))
        shipment_id = self.shipment.id if self.shipment else None
        shipment_status = change.shipment_status or (self.shipment.status if self.shipment else None)
        action = self.command.action.value
        notice = Notice.of(
            "event",
            self._sites(),
            self.coi,
            {
                "event_id": appended.event_id,
                "action": action,
                "outcome": "accepted",
                "shipment_id": shipment_id,
                "shipment_status": shipment_status,
                "unit_ids": unit_ids,
                "actor": self.actor.full_name,
                "site": self.command.site,
            },
        )
        accepted = Accepted(
            event_id=appended.event_id,
            coi=self.coi,
            seq=appended.seq,
            action=action,
            shipment_id=shipment_id,
            unit_ids=unit_ids,
            shipment_status=shipment_status,
            unit_statuses=statuses,
            message=change.detail,
            server_time=appended.server_time.isoformat(),
            hash=appended.hash,
        )
        return accepted, notice

    async def _apply(
        self, change: Change, appended: chains.Appended, receiver_id: int | None, handover_minutes: int
    ) -> None:
        conn, command, actor = self.conn, self.command, self.actor
        location = command.storage_location if command.action is Action.STORE else None
        for status in set(change.unit_status.values()):
            await cases.set_unit_status(
                conn, [u for u, s in change.unit_status.items() if s == status], status, location
            )
        if self.shipment is None:
            return
        if change.shipment_status:
            await shipments.set_status(conn, self.shipment.id, change.shipment_status)
        if change.packed:
            await shipments.mark_units(conn, self.shipment.id, sorted(change.packed), "packed")
        if change.receipt_scanned:
            await shipments.mark_units(
                conn, self.shipment.id, sorted(change.receipt_scanned), "receipt_scanned"
            )
        if change.take_custody:
            await shipments.set_holder(conn, self.shipment.id, actor.user_id)
            await cases.move_units(conn, self.shipment.manifest, None, actor.user_id)
            if self.shipment.open_handover_id is not None:
                # The receiving scan is the receiver's confirmation of a pending hand-over.
                await events.confirm_handover(conn, self.shipment.open_handover_id, appended.event_id)
                await resolve_alert(conn, f"handover:{self.shipment.open_handover_id}")
        if command.action is Action.HANDOVER and receiver_id is not None:
            await events.open_handover(
                conn,
                self.shipment.id,
                appended.event_id,
                actor.user_id,
                receiver_id,
                command.site,
                appended.server_time,
                appended.server_time + timedelta(minutes=handover_minutes),
            )

    async def refuse(self, refusal: Refusal) -> tuple[Refused, Notice]:
        appended = await chains.append(
            self.conn,
            self.chain,
            action=self.command.action.value,
            outcome="refused",
            refusal=refusal.code,
            detail=refusal.detail,
            unit_ids=[u.id for u in self.units],
            **self._event_fields(),
        )
        critical = refusal.code in _CRITICAL_TITLES
        await raise_alert(
            self.conn,
            kind=refusal.code if critical else "refused_step",
            severity="critical" if critical else "warning",
            title=_CRITICAL_TITLES.get(refusal.code, f"Refused {self.command.action} scan"),
            detail=f"{self.actor.full_name} at {self.command.site}: {refusal.detail}",
            condition_key=f"refusal:{appended.event_id}",
            sites=self._sites(),
            coi=self.coi,
            shipment_id=self.shipment.id if self.shipment else None,
            event_id=appended.event_id,
            rule={"refusal": refusal.code},
        )
        notice = Notice.of(
            "event",
            self._sites(),
            self.coi,
            {
                "event_id": appended.event_id,
                "action": self.command.action.value,
                "outcome": "refused",
                "refusal": refusal.code,
                "shipment_id": self.shipment.id if self.shipment else None,
            },
        )
        if refusal.code == "coi_mismatch":
            for other in self.other_cases:
                await self._file_mismatch_in(other, refusal, appended.event_id)
        return refused(refusal, appended.event_id, self.coi), notice

    async def _file_mismatch_in(self, coi: str, refusal: Refusal, first_event_id: int) -> None:
        """The same refusal in another case involved (the wristband's, a foreign bag's), with its alert.
        Its chain is locked after this scan's own; two scans locking the same two cases the other way
        round deadlock, and PostgreSQL rolls one back, which `record_scan` sends again."""
        chain = await chains.lock(self.conn, coi)
        fields = self._event_fields() | {"shipment_id": None}
        appended = await chains.append(
            self.conn,
            chain,
            action=self.command.action.value,
            outcome="refused",
            refusal=refusal.code,
            detail=refusal.detail,
            unit_ids=[u.id for u in self.units if u.coi == coi],
            data={"also_recorded_in": self.coi, "event_id": first_event_id},
            **fields,
        )
        sites = {u.site for u in self.units if u.coi == coi and u.site}
        sites |= {self.command.site} if self.actor.at_site(self.command.site) else set()
        await raise_alert(
            self.conn,
            kind=refusal.code,
            severity="critical",
            title="Chain of identity mismatch",
            detail=f"{self.actor.full_name} at {self.command.site}: {refusal.detail}",
            condition_key=f"refusal:{appended.event_id}",
            sites=sorted(sites),
            coi=coi,
            event_id=appended.event_id,
            rule={"refusal": refusal.code},
        )
        await announce(
            self.conn,
            "event",
            sorted(sites),
            coi,
            {"event_id": appended.event_id, "action": self.command.action.value, "outcome": "refused"},
        )


async def orphan(conn: Conn, actor: Principal, command: ScanCommand, refusal: Refusal) -> Refused:
    """A refused scan that names no known case is kept outside any chain, and still alerts."""
    orphan_id = await events.record_orphan(
        conn, actor.user_id, command.site, command.action.value, command.codes, refusal.code, refusal.detail
    )
    await raise_alert(
        conn,
        kind="refused_step",
        severity="warning",
        title=f"Refused {command.action} scan (unknown item)",
        detail=f"{actor.full_name} at {command.site}: {refusal.detail}",
        condition_key=f"orphan:{orphan_id}",
        # Addressed to the caller's own sites: an unknown item is theirs to explain, nobody else's.
        sites=[command.site] if actor.at_site(command.site) else sorted(actor.sites),
        rule={"refusal": refusal.code},
    )
    return refused(refusal, None, None)
