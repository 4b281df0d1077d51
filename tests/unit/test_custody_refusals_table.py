"""One row per refusal of the custody rules: each row makes the rules refuse once, and names the code and
HTTP status the refusal carries. A refusal added to backend/domain/custody/ without a row here fails
`test_every_refusal_site_has_a_row`, which reads the package's source for its `raise Refusal(...)`."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

import pytest

from backend.api.refusals import REFUSALS
from backend.domain.custody import (
    STEPS,
    Action,
    Change,
    Refusal,
    ShipmentState,
    UnitState,
    decide,
    receipt_decision,
)
from backend.domain.replay import UNIT_STATUS_OF_ACTION, shipment_statuses_after
from backend.domain.statuses import CaseStatus, ShipmentStatus, UnitStatus

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "backend" / "domain" / "custody"
COI_A, COI_B = "CHA999926000001", "CHA999926000002"
NOW = datetime(2026, 1, 15, 14, 0, tzinfo=UTC)


def unit(
    status: str = "labelled",
    *,
    uid: str = "U1",
    coi: str = COI_A,
    kind: str = "APH",
    site: str = "APH",
    shipment: str | None = "S1",
    released: bool = False,
    quarantined: bool = False,
    expires_at: datetime | None = None,
    thawed_at: datetime | None = None,
) -> UnitState:
    return UnitState(
        uid,
        coi,
        kind,
        status,
        site,
        shipment,
        released,
        quarantined,
        expires_at=expires_at,
        thawed_at=thawed_at,
    )


def ship(
    status: str = "planned",
    *,
    packed: tuple[str, ...] = (),
    holder: int | None = None,
    open_handover: bool = False,
) -> ShipmentState:
    manifest = frozenset({"U1"})
    return ShipmentState(
        "S1", COI_A, "APH", "CTA", status, holder, manifest, frozenset(packed), frozenset(), open_handover
    )


def step(
    action: Action,
    *units: UnitState,
    site: str = "APH",
    shipment: ShipmentState | None = None,
    **extra: object,
) -> Callable[[], Change]:
    def run() -> Change:
        return decide(action, site=site, actor_id=1, shipment=shipment, units=list(units), **extra)  # type: ignore[arg-type]

    return run


@dataclass(frozen=True)
class Row:
    name: str
    call: Callable[[], Change]
    code: str
    status: int = 409


BAG = unit("thawed", kind="PRC", site="USZ", shipment=None, released=True)

TABLE: list[Row] = [
    # Checks every step shares.
    Row("items of two patients", step(Action.PACK, unit(coi=COI_B), shipment=ship()), "coi_mismatch"),
    Row("a closed case", step(Action.LABEL, unit("created"), case_status="completed"), "case_closed"),
    Row(
        "a receipt decision in a closed case",
        lambda: receipt_decision(ship("arrived"), True, "cancelled"),
        "case_closed",
    ),
    Row(
        "dispensing an expired unit",
        step(Action.DISPENSE, unit("stored", expires_at=NOW - timedelta(hours=1)), now=NOW),
        "expired",
    ),
    Row(
        "infusing a bag past its thaw window",
        step(
            Action.INFUSE,
            unit("thawed", kind="PRC", site="USZ", thawed_at=NOW - timedelta(minutes=61)),
            site="USZ",
            wristband_coi=COI_A,
            now=NOW,
        ),
        "thaw_window_exceeded",
    ),
    Row(
        "a unit of another shipment",
        step(Action.PACK, unit(uid="U2", shipment="S2"), shipment=ship()),
        "wrong_shipment",
    ),
    Row(
        "a unit on no manifest",
        step(Action.PACK, unit(uid="U2", shipment=None), shipment=ship()),
        "unexpected_item",
    ),
    Row("labelling at another site", step(Action.LABEL, unit("created"), site="CTA"), "wrong_site"),
    Row("a unit step naming no unit", step(Action.LABEL), "unknown_item", 422),
    Row("dispensing a biobank sample", step(Action.DISPENSE, unit("stored", kind="SMP")), "not_for_patients"),
    Row("a shipment step naming no shipment", step(Action.PICKUP), "unknown_item", 422),
    Row("labelling a labelled unit", step(Action.LABEL, unit("labelled")), "out_of_order"),
    # The steps' own rules.
    Row(
        "packing a shipment in transit",
        step(Action.PACK, unit(), shipment=ship("in_transit")),
        "out_of_order",
    ),
    Row(
        "packing a product bag without QA release",
        step(Action.PACK, unit(kind="PRC"), shipment=ship()),
        "not_released",
    ),
    Row(
        "packing a quarantined unit",
        step(Action.PACK, unit(quarantined=True), shipment=ship()),
        "quarantined",
    ),
    Row("picking up a shipment not packed", step(Action.PICKUP, shipment=ship("packing")), "out_of_order"),
    Row(
        "handing over a shipment not in transit",
        step(Action.HANDOVER, shipment=ship("packed", holder=1), handover_to=2),
        "out_of_order",
    ),
    Row(
        "handing over a shipment someone else holds",
        step(Action.HANDOVER, shipment=ship("in_transit", holder=9), handover_to=2),
        "not_holder",
    ),
    Row(
        "handing over while a hand-over waits",
        step(Action.HANDOVER, shipment=ship("in_transit", holder=1, open_handover=True), handover_to=2),
        "out_of_order",
    ),
    Row(
        "a hand-over naming no receiver",
        step(Action.HANDOVER, shipment=ship("in_transit", holder=1)),
        "unknown_item",
        422,
    ),
    Row(
        "a hand-over to oneself",
        step(Action.HANDOVER, shipment=ship("in_transit", holder=1), handover_to=1),
        "same_person",
        422,
    ),
    Row(
        "receiving a shipment not in transit",
        step(Action.RECEIVE, site="CTA", shipment=ship("packed")),
        "out_of_order",
    ),
    Row(
        "scanning a unit before its shipment arrived",
        step(Action.RECEIVE, unit("in_transit"), site="CTA", shipment=ship("in_transit")),
        "out_of_order",
    ),
    Row("storing a quarantined unit", step(Action.STORE, unit("received", quarantined=True)), "quarantined"),
    Row("infusing without the wristband", step(Action.INFUSE, BAG, site="USZ"), "wristband_required", 422),
    Row("disposing of an infused unit", step(Action.DISPOSE, unit("infused")), "out_of_order"),
    # The signed decision after a delivery.
    Row(
        "a receipt decision before arrival",
        lambda: receipt_decision(ship("in_transit"), True),
        "out_of_order",
    ),
    Row(
        "accepting a delivery with units unscanned",
        lambda: receipt_decision(ship("arrived"), True),
        "unscanned_items",
    ),
]


def _refused(row: Row) -> Refusal:
    with pytest.raises(Refusal) as caught:
        row.call()
    return caught.value


def _raised_at(refusal: Refusal) -> tuple[str, int]:
    """The file and line of the `raise` that refused (the innermost frame of the traceback)."""
    tb: TracebackType | None = refusal.__traceback__
    assert tb is not None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).name, tb.tb_lineno


def _sites() -> dict[tuple[str, range], str]:
    """Every `raise Refusal("code", ...)` of the package: (file, the lines of the raise) -> code."""
    found: dict[tuple[str, range], str] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [
            n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Refusal"
        ]
        raises = [n for n in ast.walk(tree) if isinstance(n, ast.Raise) and n.exc in calls]
        assert len(raises) == len(calls), f"{path.name}: a Refusal made but not raised where it is made"
        for node in raises:
            assert isinstance(node.exc, ast.Call)
            first = node.exc.args[0] if node.exc.args else None
            where = f"{path.name}:{node.lineno}: a refusal's code is a literal, so this table can find it"
            assert isinstance(first, ast.Constant), where
            assert isinstance(first.value, str), where
            found[(path.name, range(node.lineno, (node.end_lineno or node.lineno) + 1))] = first.value
    return found


@pytest.mark.parametrize("row", TABLE, ids=[row.name for row in TABLE])
def test_refusal(row: Row) -> None:
    refusal = _refused(row)
    # The domain says only the code; the API's table says how it is answered.
    assert (refusal.code, REFUSALS[refusal.code].status) == (row.code, row.status)
    assert refusal.detail


def test_every_refusal_site_has_a_row() -> None:
    sites = _sites()
    reached: set[tuple[str, range]] = set()
    for row in TABLE:
        refusal = _refused(row)
        name, line = _raised_at(refusal)
        hits = [site for site in sites if site[0] == name and line in site[1]]
        assert len(hits) == 1, f"{row.name}: refused at {name}:{line}, which is no raise Refusal(...) site"
        assert sites[hits[0]] == row.code, f"{row.name}: that site raises {sites[hits[0]]}"
        reached.add(hits[0])
    missing = {
        f"{name}:{lines.start + 1} {code}"
        for (name, lines), code in sites.items()
        if (name, lines) not in reached
    }
    assert not missing, f"refusals with no row in TABLE: {sorted(missing)}"
    assert {row.code for row in TABLE} == set(sites.values())


def test_every_step_has_a_rule() -> None:
    assert set(STEPS) == set(Action)


def test_the_statuses_are_the_words_the_record_and_the_tables_use() -> None:
    assert set(UNIT_STATUS_OF_ACTION.values()) <= set(UnitStatus)
    for action, decision in [(a, None) for a in ("shipment_planned", "pack", "pickup", "receive")] + [
        ("receipt", "accept"),
        ("receipt", "quarantine"),
    ]:
        assert shipment_statuses_after(action, decision) <= set(ShipmentStatus)
    migration = (ROOT / "backend" / "db" / "migrations" / "0002_custody.sql").read_text(encoding="utf-8")
    check = re.search(r"status\s+text NOT NULL DEFAULT 'open' CHECK \(status IN \(([^)]*)\)\)", migration)
    assert check is not None
    assert set(re.findall(r"'([a-z_]+)'", check.group(1))) == set(CaseStatus)
