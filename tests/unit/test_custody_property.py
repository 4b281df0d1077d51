"""The custody state machine under random sequences of steps (hypothesis): whatever order a hurried or
careless crew scans in — steps left out, repeated, swapped, steps of the other leg thrown in — a product
bag is never infused unless it was released by QA, accepted at receipt, dispensed and thawed, in that
order; and once the infusion completes the case, no custody step but disposal is accepted.

The pure `decide` and `receipt_decision` are driven through a small model of what the scan service
stores after each accepted step (statuses, sites, holders, packed and scanned units): the same effects
`services/scans.py` applies, without a database. Collection before manufacture is a registration rule
(a product bag names received starting material), tested in tests/integration/test_custody_genealogy.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.domain.custody import (
    Action,
    Change,
    Refusal,
    ShipmentState,
    UnitState,
    decide,
    receipt_decision,
)

COI = "CHA999926000001"
APH, PRC = f"{COI}-APH-01", f"{COI}-PRC-01"
INBOUND, OUTBOUND = "SHP-2026-000001", "SHP-2026-000002"
COLLECTION, FACTORY, HOSPITAL = "USZ-APH", "CTA", "USZ"
NURSE, COURIER, MAKER, QA, PHARMACIST = 1, 2, 3, 4, 5


@dataclass
class World:
    units: dict[str, UnitState]
    shipments: dict[str, ShipmentState]
    case_status: str = "open"
    accepted: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    @classmethod
    def new(cls) -> World:
        def unit(uid: str, kind: str, site: str, ship: str) -> UnitState:
            return UnitState(uid, COI, kind, "created", site, ship, released=False, quarantined=False)

        def leg(sid: str, origin: str, destination: str, units: set[str]) -> ShipmentState:
            return ShipmentState(
                sid,
                COI,
                origin,
                destination,
                "planned",
                None,
                frozenset(units),
                frozenset(),
                frozenset(),
                False,
            )

        return cls(
            units={APH: unit(APH, "APH", COLLECTION, INBOUND), PRC: unit(PRC, "PRC", FACTORY, OUTBOUND)},
            shipments={
                INBOUND: leg(INBOUND, COLLECTION, FACTORY, {APH}),
                OUTBOUND: leg(OUTBOUND, FACTORY, HOSPITAL, {PRC}),
            },
        )

    def apply(self, change: Change, ship: ShipmentState | None, actor: int) -> None:
        """What the scan service stores for an accepted step."""
        for uid, status in change.unit_status.items():
            unit = self.units[uid]
            site = change.unit_site if change.unit_site is not None else unit.site
            self.units[uid] = _replace(unit, status=status, site=site)
        if ship is None:
            return
        updated = _replace(
            ship,
            status=change.shipment_status or ship.status,
            packed=change.packed or ship.packed,
            receipt_scanned=change.receipt_scanned or ship.receipt_scanned,
            holder_id=actor if change.take_custody else ship.holder_id,
        )
        self.shipments[ship.id] = updated
        if change.take_custody:
            for uid in ship.manifest:
                self.units[uid] = _replace(self.units[uid], site=None)


def _replace(struct, **changes):  # type: ignore[no-untyped-def]
    import msgspec

    return msgspec.structs.replace(struct, **changes)


@dataclass(frozen=True)
class Step:
    action: str  # an Action, or "release" (QA) / "accept" / "quarantine" (the signed receipt decision)
    actor: int
    site: str
    shipment: str | None = None
    units: tuple[str, ...] = ()
    wristband: bool = False


def _run(world: World, step: Step) -> bool:
    """Try one step; True when it was accepted (and applied)."""
    ship = world.shipments.get(step.shipment) if step.shipment else None
    units = [world.units[u] for u in step.units]
    try:
        if step.action == "release":
            # QA release (services/cases.release_unit): a labelled product bag, once.
            bag = world.units[PRC]
            if world.case_status != "open" or bag.released or bag.status != "labelled":
                return False
            world.units[PRC] = _replace(bag, released=True)
            world.accepted.append(("release", None, PRC))
            return True
        if step.action in ("accept", "quarantine"):
            assert ship is not None
            change = receipt_decision(ship, step.action == "accept", world.case_status)
            world.apply(change, ship, step.actor)
            if step.action == "quarantine":
                for uid in change.unit_status:
                    world.units[uid] = _replace(world.units[uid], quarantined=True)
            world.accepted.append((step.action, ship.id, None))
            return True
        change = decide(
            Action(step.action),
            site=step.site,
            actor_id=step.actor,
            shipment=ship,
            units=units,
            wristband_coi=COI if step.wristband else None,
            case_status=world.case_status,
        )
    except Refusal:
        return False
    world.apply(change, ship, step.actor)
    for unit in units or [None]:
        world.accepted.append((step.action, step.shipment, unit.id if unit else None))
    if step.action == Action.INFUSE and world.units[PRC].status == "infused":
        world.case_status = "completed"  # the last product bag given (db/repo/cases.complete_if_done)
    return True


HAPPY_PATH = (
    Step("label", NURSE, COLLECTION, units=(APH,)),
    Step("pack", NURSE, COLLECTION, INBOUND, (APH,)),
    Step("pickup", COURIER, COLLECTION, INBOUND),
    Step("receive", MAKER, FACTORY, INBOUND),
    Step("receive", MAKER, FACTORY, INBOUND, (APH,)),
    Step("accept", MAKER, FACTORY, INBOUND),
    Step("label", MAKER, FACTORY, units=(PRC,)),
    Step("release", QA, FACTORY),
    Step("pack", MAKER, FACTORY, OUTBOUND, (PRC,)),
    Step("pickup", COURIER, FACTORY, OUTBOUND),
    Step("receive", PHARMACIST, HOSPITAL, OUTBOUND),
    Step("receive", PHARMACIST, HOSPITAL, OUTBOUND, (PRC,)),
    Step("accept", PHARMACIST, HOSPITAL, OUTBOUND),
    Step("store", PHARMACIST, HOSPITAL, units=(PRC,)),
    Step("dispense", PHARMACIST, HOSPITAL, units=(PRC,)),
    Step("thaw", PHARMACIST, HOSPITAL, units=(PRC,)),
    Step("infuse", PHARMACIST, HOSPITAL, units=(PRC,), wristband=True),
)
# Steps a careless crew adds: the wrong site, the wrong leg, quarantine instead of accept, disposal.
NOISE = (
    Step("quarantine", PHARMACIST, HOSPITAL, OUTBOUND),
    Step("quarantine", MAKER, FACTORY, INBOUND),
    Step("infuse", PHARMACIST, HOSPITAL, units=(PRC,)),
    Step("infuse", PHARMACIST, FACTORY, units=(PRC,), wristband=True),
    Step("thaw", PHARMACIST, FACTORY, units=(PRC,)),
    Step("dispense", PHARMACIST, HOSPITAL, units=(APH,)),
    Step("store", MAKER, FACTORY, units=(APH,)),
    Step("store", MAKER, FACTORY, units=(PRC,)),
    Step("pack", MAKER, FACTORY, OUTBOUND, (APH,)),
    Step("receive", PHARMACIST, HOSPITAL, INBOUND),
    Step("dispose", PHARMACIST, HOSPITAL, units=(APH,)),
    Step("dispose", MAKER, FACTORY, units=(APH,)),
    Step("label", MAKER, FACTORY, units=(APH,)),
    *HAPPY_PATH,
)


@st.composite
def crews(draw: st.DrawFn) -> list[Step]:
    """The happy path with steps dropped, swapped and others thrown in."""
    steps = [s for s in HAPPY_PATH if draw(st.integers(0, 9)) > 0]
    for _ in range(draw(st.integers(0, 12))):
        steps.insert(draw(st.integers(0, len(steps))), draw(st.sampled_from(NOISE)))
    for _ in range(draw(st.integers(0, 3))):
        if len(steps) > 1:
            i = draw(st.integers(0, len(steps) - 2))
            steps[i], steps[i + 1] = steps[i + 1], steps[i]
    return steps


def _position(world: World, entry: tuple[str, str | None, str | None]) -> int | None:
    return world.accepted.index(entry) if entry in world.accepted else None


def test_the_happy_path_reaches_the_infusion_and_completes_the_case() -> None:
    world = World.new()
    assert all(_run(world, step) for step in HAPPY_PATH)
    assert world.units[PRC].status == "infused"
    assert world.case_status == "completed"


@settings(max_examples=400, deadline=None)
@given(crews())
def test_no_infusion_without_release_receipt_dispense_and_thaw_in_order(steps: list[Step]) -> None:
    world = World.new()
    for step in steps:
        _run(world, step)
    infused = _position(world, ("infuse", None, PRC))
    if infused is None:
        return
    before = [
        _position(world, ("release", None, PRC)),
        _position(world, ("accept", OUTBOUND, None)),
        _position(world, ("dispense", None, PRC)),
        _position(world, ("thaw", None, PRC)),
    ]
    assert None not in before, world.accepted
    assert before == sorted(before), world.accepted  # type: ignore[type-var]
    assert before[-1] < infused  # type: ignore[operator]
    assert not world.units[PRC].quarantined


@settings(max_examples=300, deadline=None)
@given(crews(), st.lists(st.sampled_from(NOISE), min_size=1, max_size=10))
def test_a_completed_case_accepts_no_step_but_disposal(before: list[Step], after: list[Step]) -> None:
    world = World.new()
    for step in (*before, *HAPPY_PATH):
        _run(world, step)
    if world.case_status != "completed":
        return
    done = len(world.accepted)
    for step in after:
        _run(world, step)
    assert {action for action, _ship, _unit in world.accepted[done:]} <= {"dispose"}, world.accepted[done:]
