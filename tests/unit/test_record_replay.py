"""State from the record, with plain values: a journey's events replayed give the states the tables
should hold; a difference is named with the object, the field and both states. And the checkpoint's
Merkle root and MAC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backend.domain import checkpoint
from backend.domain.chain import EventRecord
from backend.domain.keyring import new_key_line, parse_keyring
from backend.domain.replay import compare, replay, shipment_statuses_after

COI = "CHA999926000001"
AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def event(
    seq: int, action: str, *, units: tuple[str, ...] = (), ship: str | None = None, **kw: Any
) -> EventRecord:
    return EventRecord(
        coi=COI,
        seq=seq,
        action=action,
        outcome=kw.get("outcome", "accepted"),
        refusal=None,
        detail=action,
        shipment_id=ship,
        unit_ids=list(units),
        actor_id=kw.get("actor", 1),
        actor_name="A",
        site=kw.get("site", "APH"),
        counterpart_id=None,
        codes=[],
        device_time=None,
        server_time=AT,
        gps=None,
        data=kw.get("data", {}),
        corrects=None,
        signatures=[],
    )


JOURNEY = [
    event(1, "case_created", site="USZ"),
    event(2, "unit_registered", units=("U1",)),
    event(3, "label", units=("U1",)),
    event(4, "shipment_planned", units=("U1",), ship="S1"),
    event(5, "pack", units=("U1",), ship="S1"),
    event(6, "pickup", units=("U1",), ship="S1", actor=7),
    event(7, "dispose", units=("U1",), outcome="refused"),  # a refusal changes nothing
    event(8, "receive", ship="S1", site="CTA", actor=8),
    event(9, "receive", units=("U1",), ship="S1", site="CTA", actor=8),
    event(10, "receipt", units=("U1",), ship="S1", site="CTA", actor=8, data={"decision": "quarantine"}),
]


def test_a_journey_replays_to_the_states_the_tables_hold():
    derived = replay(JOURNEY)
    unit = derived.units["U1"]
    assert (unit.status, unit.site, unit.shipment_id, unit.quarantined) == ("received", "CTA", "S1", True)
    ship = derived.shipments["S1"]
    assert (ship.status, ship.holder_id) == ("quarantined", 8)
    units = [
        {
            "id": "U1",
            "status": "received",
            "site": "CTA",
            "shipment_id": "S1",
            "released": False,
            "quarantined": True,
        }
    ]
    legs = [{"id": "S1", "status": "quarantined", "holder_id": 8}]
    assert compare(derived, COI, "open", units, legs) == []


def test_every_difference_is_named_with_both_states():
    derived = replay(JOURNEY)
    units = [
        {
            "id": "U1",
            "status": "stored",
            "site": "CTA",
            "shipment_id": "S1",
            "released": True,
            "quarantined": False,
        },
        {
            "id": "U9",
            "status": "thawed",
            "site": "CTA",
            "shipment_id": None,
            "released": False,
            "quarantined": False,
        },
    ]
    legs = [{"id": "S1", "status": "received", "holder_id": 8}]
    found = {
        (m.object, m.id, m.field): (m.recorded, m.stored)
        for m in compare(derived, COI, "closed", units, legs)
    }
    assert found == {
        ("case", COI, "status"): ("open", "closed"),
        ("unit", "U1", "status"): ("received", "stored"),
        ("unit", "U1", "released"): (False, True),
        ("unit", "U1", "quarantined"): (True, False),
        ("unit", "U9", "status"): (None, "thawed"),  # no event registers it
        ("shipment", "S1", "status"): ("quarantined", "received"),
    }


def test_a_partly_packed_shipment_is_packing():
    events = [
        event(1, "unit_registered", units=("U1", "U2")),
        event(2, "shipment_planned", units=("U1", "U2"), ship="S1"),
        event(3, "pack", units=("U1",), ship="S1"),
    ]
    assert replay(events).shipments["S1"].status == "packing"
    assert replay([*events, event(4, "pack", units=("U2",), ship="S1")]).shipments["S1"].status == "packed"
    assert shipment_statuses_after("pack", None) == {"packing", "packed"}
    assert shipment_statuses_after("receipt", "accept") == {"received"}


def test_checkpoints_are_authentic_only_with_their_key_and_unchanged():
    keyring = parse_keyring(new_key_line())
    other = parse_keyring(new_key_line())
    assert keyring.current is not None
    heads = [checkpoint.Head(f"CHA99992600000{i}", i, (bytes([i]) * 32).hex()) for i in range(1, 6)]
    made = checkpoint.make(keyring.current, "rec", AT, 0, heads)
    assert checkpoint.authenticity(checkpoint.decode(checkpoint.encode(made)), keyring) == "authentic"
    assert checkpoint.authenticity(made, other) == "unverifiable"
    shortened = checkpoint.Checkpoint(
        checkpoint.Body(**{**_fields(made.body), "cases": made.body.cases[:-1]}), made.mac
    )
    assert checkpoint.authenticity(shortened, keyring) == "forged"
    # The Merkle root depends on every head and not on their order.
    assert checkpoint.merkle_root(list(reversed(heads))) == made.body.merkle_root
    assert checkpoint.merkle_root(heads[:-1]) != made.body.merkle_root
    entry = checkpoint.entry(made, "CHA999926000003")
    assert entry is not None
    links = [(bytes([3]) * 32)] * 3
    assert checkpoint.chain_against(entry, links) is None
    assert "removed" in (checkpoint.chain_against(entry, links[:2]) or "")
    assert "rewritten" in (checkpoint.chain_against(entry, [bytes(32)] * 3) or "")


def _fields(body: checkpoint.Body) -> dict[str, Any]:
    return {f: getattr(body, f) for f in body.__struct_fields__}
