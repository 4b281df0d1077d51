"""The pure rule of allogeneic bags (backend/domain/allogeneic.py) with the state machine: a bag of a
batch is compared with a wristband as its recipient's, and goes to nobody unallocated or once the
allocation's row and record disagree."""

from __future__ import annotations

import pytest

from backend.domain.allogeneic import Allocation, patient_units
from backend.domain.custody import Action, Refusal, UnitState, decide

BATCH, ANNA, BEN = "CHA999926000001", "CHA999926000002", "CHA999926000003"
BAG = f"{BATCH}-PRC-01"


def _bag(status: str = "thawed") -> UnitState:
    return UnitState(BAG, BATCH, "PRC", status, "USZ", None, True, False)


def _allocation(recipient: str | None, recorded: str | None = "same", status: str = "open") -> Allocation:
    return Allocation(BAG, BATCH, True, recipient, recipient if recorded == "same" else recorded, status)


def _infuse(allocation: Allocation | None, wristband: str) -> None:
    found = {BAG: allocation} if allocation is not None else {}
    units = patient_units(Action.INFUSE, [_bag()], found, wristband)
    decide(Action.INFUSE, site="USZ", actor_id=1, shipment=None, units=units, wristband_coi=wristband)


def test_the_recipients_wristband_matches_and_anothers_is_a_coi_mismatch() -> None:
    _infuse(_allocation(ANNA), ANNA)
    with pytest.raises(Refusal) as stop:
        _infuse(_allocation(ANNA), BEN)
    assert stop.value.code == "coi_mismatch"
    assert ANNA in stop.value.detail
    assert BEN in stop.value.detail


@pytest.mark.parametrize("wristband", [ANNA, BATCH])
def test_an_unallocated_bag_is_given_to_nobody(wristband: str) -> None:
    with pytest.raises(Refusal) as stop:
        _infuse(_allocation(None), wristband)
    assert stop.value.code == "not_allocated"


def test_an_allocation_row_that_differs_from_its_record_is_a_record_mismatch() -> None:
    for tampered in (_allocation(BEN, recorded=ANNA), _allocation(BEN, recorded=None)):
        with pytest.raises(Refusal) as stop:
            _infuse(tampered, BEN)
        assert stop.value.code == "record_mismatch"


def test_a_closed_recipients_bag_goes_to_nobody_but_a_stranger_is_still_a_mismatch() -> None:
    with pytest.raises(Refusal) as stop:
        _infuse(_allocation(ANNA, status="cancelled"), ANNA)
    assert stop.value.code == "case_closed"
    with pytest.raises(Refusal) as stop:
        _infuse(_allocation(ANNA, status="cancelled"), BEN)
    assert stop.value.code == "coi_mismatch"


def test_an_autologous_bag_keeps_its_own_coi_and_steps_away_from_patients_need_no_allocation() -> None:
    own = Allocation(BAG, BATCH, False, None, None)
    assert patient_units(Action.INFUSE, [_bag()], {BAG: own}, BATCH) == [_bag()]
    stored = _bag("received")
    assert patient_units(Action.STORE, [stored], {BAG: _allocation(None)}, None) == [stored]
    # Without a wristband the batch's COI stays, so a shipment of the batch still matches its bags.
    assert patient_units(Action.DISPENSE, [_bag("stored")], {BAG: _allocation(ANNA)}, None)[0].coi == BATCH
