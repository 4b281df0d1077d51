"""The custody state machine and the hash chain, with plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.domain.chain import (
    ChainCheck,
    EventRecord,
    LinkedEvent,
    SignatureRecord,
    check_chain,
    event_hash,
    keyed_link,
)
from backend.domain.custody import Action, Refusal, ShipmentState, UnitState, decide, receipt_decision
from backend.domain.keyring import EMPTY, Keyring, KeyringError, new_key_line, parse_keyring

COI_A, COI_B = "CHA999926000001", "CHA999926000002"


def unit(
    status: str = "labelled",
    coi: str = COI_A,
    uid: str = "U1",
    kind: str = "APH",
    site: str = "APH",
    shipment: str | None = "S1",
    released: bool = False,
) -> UnitState:
    return UnitState(uid, coi, kind, status, site, shipment, released, False)


def shipment(
    status: str = "planned",
    manifest: tuple[str, ...] = ("U1",),
    packed: tuple[str, ...] = (),
    holder: int | None = None,
    scanned: tuple[str, ...] = (),
) -> ShipmentState:
    return ShipmentState(
        "S1",
        COI_A,
        "APH",
        "CTA",
        status,
        holder,
        frozenset(manifest),
        frozenset(packed),
        frozenset(scanned),
        False,
    )


def refusal_of(**kwargs: object) -> str:
    with pytest.raises(Refusal) as caught:
        decide(**kwargs)  # type: ignore[arg-type]
    return caught.value.code


def test_pack_then_pickup():
    change = decide(Action.PACK, site="APH", actor_id=1, shipment=shipment(), units=[unit()])
    assert change.unit_status == {"U1": "packed"}
    assert change.shipment_status == "packed"
    pickup = decide(
        Action.PICKUP, site="APH", actor_id=2, shipment=shipment("packed", packed=("U1",)), units=[]
    )
    assert pickup.shipment_status == "in_transit"
    assert pickup.take_custody


def test_partial_packing_keeps_the_shipment_open():
    change = decide(
        Action.PACK, site="APH", actor_id=1, shipment=shipment(manifest=("U1", "U2")), units=[unit()]
    )
    assert change.shipment_status == "packing"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"action": Action.PACK, "units": [unit(coi=COI_B)]}, "coi_mismatch"),
        ({"action": Action.PACK, "units": [unit(uid="U9", shipment=None)]}, "unexpected_item"),
        ({"action": Action.PACK, "units": [unit(uid="U9", shipment="S7")]}, "wrong_shipment"),
        ({"action": Action.PACK, "units": [unit(status="created")]}, "out_of_order"),
        ({"action": Action.PACK, "units": [unit(kind="PRC")]}, "not_released"),
        ({"action": Action.PACK, "units": [unit()], "site": "CTA"}, "wrong_site"),
        ({"action": Action.PICKUP, "units": []}, "out_of_order"),
        ({"action": Action.STORE, "units": [unit(status="in_transit")]}, "out_of_order"),
        ({"action": Action.INFUSE, "units": [unit(status="thawed")]}, "wristband_required"),
    ],
)
def test_refusals(kwargs, code):
    base = {"site": "APH", "actor_id": 1, "shipment": shipment()}
    assert refusal_of(**{**base, **kwargs}) == code


def test_handover_rules():
    moving = shipment("in_transit", holder=5)
    assert decide(Action.HANDOVER, site="X", actor_id=5, shipment=moving, units=[], handover_to=6).detail
    assert (
        refusal_of(action=Action.HANDOVER, site="X", actor_id=6, shipment=moving, units=[], handover_to=7)
        == "not_holder"
    )
    assert (
        refusal_of(action=Action.HANDOVER, site="X", actor_id=5, shipment=moving, units=[], handover_to=5)
        == "same_person"
    )


def test_bedside_needs_matching_wristband():
    thawed = unit(status="thawed", site="USZ")
    ok = decide(Action.INFUSE, site="USZ", actor_id=1, shipment=None, units=[thawed], wristband_coi=COI_A)
    assert ok.unit_status == {"U1": "infused"}
    assert (
        refusal_of(
            action=Action.INFUSE, site="USZ", actor_id=1, shipment=None, units=[thawed], wristband_coi=COI_B
        )
        == "coi_mismatch"
    )


def test_receipt_accept_needs_every_unit_scanned():
    arrived = shipment("arrived", manifest=("U1", "U2"), scanned=("U1",))
    with pytest.raises(Refusal, match="missing U2"):
        receipt_decision(arrived, accept=True)
    assert receipt_decision(arrived, accept=False).shipment_status == "quarantined"


def record(seq: int, detail: str = "ok") -> EventRecord:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=seq)
    return EventRecord(
        coi=COI_A,
        seq=seq,
        action="label",
        outcome="accepted",
        refusal=None,
        detail=detail,
        shipment_id=None,
        unit_ids=["U1"],
        actor_id=1,
        actor_name="A",
        site="APH",
        counterpart_id=None,
        codes=["x"],
        device_time=None,
        server_time=at,
        gps=None,
        data={"b": 1, "a": [1.5, "x"]},
        corrects=None,
        signatures=[SignatureRecord("a", "A", "released", "qa", at)],
    )


KEYRING = parse_keyring(new_key_line())


def chain(n: int, keyring: Keyring = KEYRING) -> list[LinkedEvent]:
    assert keyring.current is not None
    out: list[LinkedEvent] = []
    previous = None
    for seq in range(1, n + 1):
        digest = keyed_link(keyring.current, previous, record(seq))
        out.append(LinkedEvent(seq, previous, digest, keyring.current.key_id, record(seq)))
        previous = digest
    return out


def first_break(events: list[LinkedEvent], keyring: Keyring = KEYRING, ceiling: int = 0) -> ChainCheck:
    return check_chain(events, keyring, ceiling)


def test_hash_does_not_depend_on_time_zone_or_key_order():
    base = record(1)
    zurich = base.server_time.astimezone(ZoneInfo("Europe/Zurich"))
    same_instant = msgspec.structs.replace(base, server_time=zurich, data={"a": [1.5, "x"], "b": 1})
    assert event_hash(None, same_instant) == event_hash(None, base)
    assert event_hash(None, msgspec.structs.replace(base, detail="other")) != event_hash(None, base)


@given(st.integers(min_value=1, max_value=12), st.data())
def test_any_change_is_found_at_the_changed_event(n, data):
    events = chain(n)
    assert first_break(events).broken is None
    target = data.draw(st.integers(min_value=0, max_value=n - 1))
    original = events[target]
    events[target] = msgspec.structs.replace(
        original, record=msgspec.structs.replace(original.record, detail="edited")
    )
    broken = first_break(events).broken
    assert broken is not None
    assert broken.seq == target + 1


@given(st.integers(min_value=2, max_value=12), st.data())
def test_a_removed_event_is_found(n, data):
    events = chain(n)
    gone = data.draw(st.integers(min_value=0, max_value=n - 2))
    del events[gone]
    broken = first_break(events).broken
    assert broken is not None
    assert broken.seq in (gone + 1, gone + 2)


def test_a_chain_recomputed_without_the_key_breaks_where_it_was_rewritten():
    events = chain(6)
    # The insider edits event 3 and relinks 3..6 with the plain hash (what Celltrail's code computes
    # without the key), keeping or dropping the key ids.
    for keep_key_ids in (True, False):
        forged = events[:2]
        previous = forged[-1].hash
        for event in events[2:]:
            content = (
                event.record
                if event.record.seq != 3
                else msgspec.structs.replace(event.record, actor_name="X")
            )
            digest = event_hash(previous, content)
            forged.append(
                LinkedEvent(event.id, previous, digest, event.key_id if keep_key_ids else None, content)
            )
            previous = digest
        broken = first_break(forged).broken
        assert broken is not None
        assert broken.seq == 3, broken


def test_legacy_unkeyed_events_verify_below_the_ceiling_and_are_named():
    legacy: list[LinkedEvent] = []
    previous = None
    for seq in (1, 2):
        digest = event_hash(previous, record(seq))
        legacy.append(LinkedEvent(seq, previous, digest, None, record(seq)))
        previous = digest
    assert KEYRING.current is not None
    digest = keyed_link(KEYRING.current, previous, record(3))
    events = [*legacy, LinkedEvent(3, previous, digest, KEYRING.current.key_id, record(3))]
    checked = first_break(events, ceiling=2)
    assert checked.broken is None
    assert checked.unkeyed == [1, 2]
    # Above the ceiling (recorded after keys were introduced), an unkeyed event is a break.
    assert first_break(events, ceiling=1).broken is not None


def test_rotation_old_events_verify_with_the_old_key_new_ones_with_the_new():
    old = parse_keyring(new_key_line())
    rotated = parse_keyring(new_key_line() + "\n")
    assert old.current is not None
    assert rotated.current is not None
    both = Keyring([old.current, rotated.current])
    first = keyed_link(old.current, None, record(1))
    second = keyed_link(rotated.current, first, record(2))
    events = [
        LinkedEvent(1, None, first, old.current.key_id, record(1)),
        LinkedEvent(2, first, second, rotated.current.key_id, record(2)),
    ]
    assert first_break(events, both).broken is None
    assert first_break(events, both).missing_keys == []
    # Without the old key the chain is not broken, and not verified either: unverifiable.
    checked = first_break(events, rotated)
    assert checked.broken is None
    assert checked.missing_keys == [old.current.key_id]
    assert checked.unchecked == [1]
    assert first_break(events, EMPTY).missing_keys == [old.current.key_id, rotated.current.key_id]


def test_keyring_files_name_keys_by_id_and_refuse_garbage():
    line = new_key_line()
    keyring = parse_keyring(f"# comment\n{line}\n")
    assert keyring.current is not None
    assert keyring.current.key_id in line  # the id is written beside the key as a comment
    secret = line.split()[0]
    assert secret not in repr(keyring)
    assert secret not in repr(keyring.current)
    for bad in ("", "# only a comment\n", "not base64!\n", "c2hvcnQ=\n"):
        with pytest.raises(KeyringError):
            parse_keyring(bad)
