"""The object gate, tried from another organisation: every API operation and every scan action is called
by each person of organisation B (every role, bound to B's two sites) on organisation A's records — a
product bag in transit, a shipment, its hand-over, an alert, a custody event, a logger, a subscription —
and the answer must be exactly the answer for ids that do not exist (same status, same body once the ids
are set aside), must name nothing else of A's, and must write nothing to A's chain, alerts, outbox, audit
trail or records.

The table below has a row for every operation in the OpenAPI description: a new operation fails here
until someone decides how it is tried."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from backend.domain.access import Role
from backend.domain.custody import Action
from celltrail_shared.identifiers import Coi, UnitId, UnitKind
from tests.integration.helpers import make_site, make_user
from tests.integration.journey import PASSWORD, World, build_world, released_bag

B_SITES = ["KSB", "KSB-LAB"]
A_SITES = ["USZ", "USZ-APH", "CTA", "CRX"]
B_ROLES = [Role.COORDINATOR, Role.PHARMACIST, Role.COURIER, Role.MANUFACTURING, Role.QA]
_MISSING_COI = Coi(fin="A9999", year="26", sequence="ZZZZZZ").value

# Ids of records that exist nowhere, of the same shapes as A's.
NOWHERE = {
    "coi": _MISSING_COI,
    "aph": UnitId(coi=Coi.from_value(_MISSING_COI), kind=UnitKind("APH"), number=1).text,
    "prc": UnitId(coi=Coi.from_value(_MISSING_COI), kind=UnitKind("PRC"), number=1).text,
    "ship_in": "SHP-2026-999998",
    "ship_out": "SHP-2026-999999",
    "event_id": "999999",
    "alert_id": "999999",
    "handover_id": "999999",
    "logger_id": "LGR-NOWHERE1",
    "subscription_id": "999999",
}


# ---------------------------------------------------------------------------------------- the two worlds


@dataclass
class Organisations:
    world: World  # organisation A: the journey's sites and people, with the admin
    b: dict[Role, dict[str, str]]  # organisation B: one person per role, bound to both B sites
    a_ids: dict[str, str]  # A's records, by the placeholder names of NOWHERE
    b_case: str = ""
    b_unit: str = ""
    secrets: list[str] = field(default_factory=list)  # other identifiers of A that must never show
    # Users of a courier company and of a client (docs/organisations.md), who see by relation only: their
    # own leg (`b_leg`, assigned to their courier company) and their own case (B's case, made for their
    # client). A's leg is assigned to another courier company and A's case made for another client.
    others: dict[str, dict[str, str]] = field(default_factory=dict)
    b_leg: str = ""


async def two_organisations(client: Any) -> Organisations:
    world = await build_world(client)
    root = world.headers["admin"]
    coi, prc = await released_bag(world)
    inbound = (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline"))["shipments"][0]
    aph, ship_in = f"{coi}-APH-01", inbound["id"]
    await world.ok(
        "admin",
        "POST",
        "/api/v1/loggers",
        201,
        json={"id": "LGR-A0001", "owner_site": "CTA", "model": "TempTale"},
    )
    ship_out = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship_out, prc)
    # A's leg is carried by A's courier company, named before the pickup (afterwards only a hand-over
    # to the new company's driver moves it).
    await world.ok(
        "admin",
        "POST",
        "/api/v1/organisations",
        201,
        json={"code": "A-CARRIER", "name": "A", "kind": "courier"},
    )
    assignment = {"organisation": "A-CARRIER", "reason": "A's carrier"}
    await world.ok("mfg", "PUT", f"/api/v1/shipments/{ship_out}/courier", json=assignment)
    await world.scan_ok("courier1", "pickup", "CTA", ship_out)
    # The bag is in transit to the hospital, with a hand-over waiting for its confirmation.
    await world.scan_ok("courier1", "handover", "CRX", ship_out, handover_to="courier2")
    pending = await world.ok("courier1", "GET", f"/api/v1/shipments/{ship_out}")
    # A refused scan: a custody event and an alert of A's.
    refused = await world.scan("courier1", "pack", "CTA", ship_out, prc)
    assert refused.status_code == 403, refused.text
    alert = (await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": coi}))[0]
    subscription = await world.ok(
        "coord",
        "POST",
        "/api/v1/sites/USZ/subscriptions",
        201,
        json={"channel": "email", "target": "pharmacy@usz.example", "min_severity": "warning"},
    )
    a_ids = {
        "coi": coi,
        "aph": aph,
        "prc": prc,
        "ship_in": ship_in,
        "ship_out": ship_out,
        "event_id": str(refused.json()["event_id"]),
        "alert_id": str(alert["id"]),
        "handover_id": str(pending["pending_handover"]),
        "logger_id": "LGR-A0001",
        "subscription_id": str(subscription["subscription"]["id"]),
    }
    await make_site(client, root, "KSB")
    await make_site(client, root, "KSB-LAB", kind="manufacturing")
    b = {role: await make_user(client, root, f"b-{role.value}", [role.value], B_SITES) for role in B_ROLES}
    orgs = Organisations(world, b, a_ids, secrets=["MRN-0042", "pharmacy@usz.example"])
    # B's own case and bag, to mix with A's ids.
    case = await client.post(
        "/api/v1/cases",
        headers=b[Role.COORDINATOR],
        json={"treatment_site": "KSB", "therapy": "CAR-T (autologous)", "patient_ref": "B-1"},
    )
    orgs.b_case = case.json()["coi"]
    unit = await client.post(
        f"/api/v1/cases/{orgs.b_case}/units",
        headers=b[Role.PHARMACIST],
        json={"kind": "APH", "product": "Apheresis", "site": "KSB"},
    )
    orgs.b_unit = unit.json()["id"]
    await organisation_actors(client, orgs)
    return orgs


async def organisation_actors(client: Any, orgs: Organisations) -> None:
    """A courier company's user with an assigned leg (B's) and an unassigned one (A's, carried by another
    company); a client's user with its own case (B's) and another client's case (A's). Both are bound to
    sites of A's as well, so that a site binding opening anything to them would show here."""
    world, root = orgs.world, orgs.world.headers["admin"]
    for code, kind in (
        ("A-CLIENT", "client"),
        ("B-CLIENT", "client"),
        ("B-CARRIER", "courier"),
        ("B-MAKER", "manufacturer"),
    ):
        await world.ok(
            "admin", "POST", "/api/v1/organisations", 201, json={"code": code, "name": code, "kind": kind}
        )
    world.headers |= {"b-coord": orgs.b[Role.COORDINATOR], "b-pharm": orgs.b[Role.PHARMACIST]}
    await world.ok(
        "coord", "PUT", f"/api/v1/cases/{orgs.a_ids['coi']}/client", json={"organisation": "A-CLIENT"}
    )
    await world.ok("b-coord", "PUT", f"/api/v1/cases/{orgs.b_case}/client", json={"organisation": "B-CLIENT"})
    orgs.b_leg = await world.shipment("b-coord", orgs.b_case, "KSB", "KSB-LAB", [orgs.b_unit])
    assignment = {"organisation": "B-CARRIER", "reason": "B's carrier"}
    await world.ok("b-coord", "PUT", f"/api/v1/shipments/{orgs.b_leg}/courier", json=assignment)
    courier = await make_user(
        client, root, "o-courier", [Role.COURIER.value], [*B_SITES, "CRX", "USZ-APH"], PASSWORD
    )
    # Every role a client's user could be given by mistake, and every site of A's.
    roles = [r.value for r in (Role.COORDINATOR, Role.PHARMACIST, Role.MANUFACTURING, Role.QA)]
    client_user = await make_user(client, root, "o-client", roles, [*A_SITES, *B_SITES], PASSWORD)
    # A manufacturer's maker at the other manufacturing site of B's manufacturer: the cases made at
    # KSB-LAB are theirs to see ("made by"), A's never.
    await make_site(client, root, "KSB-LAB2", kind="manufacturing")
    for site in ("KSB-LAB", "KSB-LAB2"):
        await world.ok("admin", "PUT", f"/api/v1/sites/{site}/organisation", json={"organisation": "B-MAKER"})
    maker = await make_user(
        client, root, "o-maker", [Role.MANUFACTURING.value, Role.QA.value], ["KSB-LAB2"], PASSWORD
    )
    for username, organisation in (
        ("o-courier", "B-CARRIER"),
        ("o-client", "B-CLIENT"),
        ("o-maker", "B-MAKER"),
    ):
        await world.ok(
            "admin", "PUT", f"/api/v1/users/{username}/organisation", json={"organisation": organisation}
        )
    orgs.others = {"courier-company": courier, "client-organisation": client_user, "manufacturer": maker}


# ------------------------------------------------------------------------------ what A has, before/after


async def snapshot(database_url: str, orgs: Organisations) -> dict[str, Any]:
    """Everything of A's that a call by B could change; compared whole before and after."""
    ids = orgs.a_ids
    conn = await asyncpg.connect(database_url)
    try:
        queries = {
            "chain": ("SELECT count(*)::text FROM custody_events WHERE coi = $1", ids["coi"]),
            "case": ("SELECT md5(c::text) FROM cases c WHERE coi = $1", ids["coi"]),
            "units": (
                "SELECT md5(string_agg(u::text, '|' ORDER BY id)) FROM units u WHERE coi = $1",
                ids["coi"],
            ),
            "shipments": (
                "SELECT md5(string_agg(s::text, '|' ORDER BY id)) FROM shipments s WHERE coi = $1",
                ids["coi"],
            ),
            "handovers": (
                "SELECT md5(string_agg(h::text, '|' ORDER BY h.id)) FROM handovers h "
                "JOIN shipments s ON s.id = h.shipment_id WHERE s.coi = $1",
                ids["coi"],
            ),
            "alerts": (
                # Without the notifier's own bookkeeping (what it last sent, when it last reminded), which
                # it writes in the background whatever B does.
                "SELECT count(*)::text || md5(string_agg((to_jsonb(a) - 'notified_severity' - "
                "'notified_status' - 'reminded_at')::text, '|' ORDER BY id)) FROM alerts a "
                "WHERE sites && $1::text[] OR coi = $2",
                A_SITES,
                ids["coi"],
            ),
            "outbox": (
                "SELECT count(*)::text FROM outbox WHERE sites && $1::text[] OR coi = $2",
                A_SITES,
                ids["coi"],
            ),
            "audit": (
                "SELECT count(*)::text FROM audit_log a WHERE a::text LIKE ANY($1::text[])",
                [f"%{v}%" for k, v in ids.items() if not k.endswith("_id") or k == "logger_id"],
            ),
            "logger": ("SELECT md5(l::text) FROM loggers l WHERE id = $1", ids["logger_id"]),
            "subscriptions": (
                "SELECT md5(string_agg(s::text, '|' ORDER BY id)) FROM alert_subscriptions s "
                "WHERE site = ANY($1)",
                A_SITES,
            ),
        }
        return {name: await conn.fetchval(sql, *args) for name, (sql, *args) in queries.items()}
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Probe:
    """How an operation is tried on A's records.

    `kind`:
      record  the path or body names A's records: the answer must be the answer for ids that exist nowhere
      list    the answer must not name A's records
      guard   refused by the route's policy (admin only, A's site in the path, the bridge only)
      own     about the caller alone (their session, password): nothing of A's to name
    """

    kind: str
    path: str = ""
    body: Callable[[dict[str, str], Organisations], Any] | None = None
    query: dict[str, str] = field(default_factory=dict)
    method: str = ""  # GET without a body, POST with one, unless named


def _scan(action: str, *codes: str, **extra: Any) -> Callable[[dict[str, str], Organisations], Any]:
    def body(ids: dict[str, str], orgs: Organisations) -> Any:
        return {
            "idempotency_key": str(uuid.uuid4()),
            "action": action,
            "site": "KSB",
            "codes": [c.format(**ids, b_unit=orgs.b_unit) for c in codes],
            **extra,
        }

    return body


def _shipment_plan(ids: dict[str, str], orgs: Organisations) -> Any:
    departure = datetime.now(UTC)
    return {
        "coi": ids["coi"],
        "from_site": "KSB",
        "to_site": "KSB-LAB",
        "container_id": "SHIPPER-B",
        "profile": "fresh",
        "planned_departure": departure.isoformat(),
        "planned_arrival": (departure + timedelta(hours=6)).isoformat(),
        "units": [ids["aph"]],
        "seals": ["SEAL-B"],
    }


def _own_case_with_their_unit(ids: dict[str, str], orgs: Organisations) -> Any:
    return _shipment_plan(ids, orgs) | {"coi": orgs.b_case, "units": [orgs.b_unit, ids["aph"]]}


def _own_case_with_their_logger(ids: dict[str, str], orgs: Organisations) -> Any:
    return _shipment_plan(ids, orgs) | {
        "coi": orgs.b_case,
        "units": [orgs.b_unit],
        "logger_id": ids["logger_id"],
    }


def _epcis(ids: dict[str, str], orgs: Organisations) -> Any:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat(),
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "eventTimeZoneOffset": "+00:00",
                    "epcList": [f"urn:celltrail:shipment:{ids['ship_out']}"],
                    "action": "OBSERVE",
                    "bizStep": "receiving",
                    "readPoint": {"id": "urn:celltrail:site:KSB"},
                }
            ]
        },
    }


def _bedside(wristband: str, bag: str) -> Callable[[dict[str, str], Organisations], Any]:
    def body(ids: dict[str, str], orgs: Organisations) -> Any:
        return {
            "idempotency_key": str(uuid.uuid4()),
            "site": "KSB",
            "wristband": wristband.format(**ids, b_case=orgs.b_case),
            "bag": bag.format(**ids, b_unit=orgs.b_unit),
        }

    return body


_RECEIPT = {
    "decision": "quarantine",
    "password": PASSWORD,
    "checklist": {"seals_intact": False, "shipper_intact": True, "temperature_reviewed": True},
    "comment": "B",
}


def _order(ids: dict[str, str], orgs: Organisations) -> Any:
    return {
        "product": "car-t",
        "collection_site": "KSB",
        "manufacturing_site": "KSB-LAB",
        "mdt_reference": "MDT-B",
        "mdt_date": "2026-01-05",
        "physician": "Dr. B",
    }


TABLE: dict[str, list[Probe]] = {
    "health": [Probe("own", "/healthz")],
    "login": [Probe("own")],  # public; tried in test_security_login_throttle.py
    "logout": [Probe("own")],  # would end the session the other rows use
    "changeOwnPassword": [Probe("own")],
    "me": [Probe("own", "/api/v1/auth/me")],
    "listUsers": [Probe("guard", "/api/v1/users")],
    "createUser": [Probe("guard", "/api/v1/users", body=lambda i, o: {})],
    "updateUser": [Probe("guard", "/api/v1/users/coord", body=lambda i, o: {}, method="PATCH")],
    "getUser": [Probe("guard", "/api/v1/users/coord")],
    "resetPassword": [Probe("guard", "/api/v1/users/coord/password", body=lambda i, o: {})],
    "unlockUser": [Probe("guard", "/api/v1/users/coord/unlock", body=lambda i, o: {})],
    "createSite": [Probe("guard", "/api/v1/sites", body=lambda i, o: {})],
    # The site directory is the network's address book: codes and names, no records.
    "listSites": [Probe("own", "/api/v1/sites")],
    "getSite": [Probe("own", "/api/v1/sites/USZ")],
    "listSiteUsers": [Probe("guard", "/api/v1/sites/USZ/users")],
    "listAudit": [Probe("list", "/api/v1/audit")],
    "createCase": [
        Probe("record", "/api/v1/cases", body=lambda i, o: {"treatment_site": "USZ", "therapy": "X"}),
        # Naming a client at creation opens nothing of A's: a case at A's site is refused as before.
        Probe(
            "record",
            "/api/v1/cases",
            body=lambda i, o: {"treatment_site": "USZ", "therapy": "X", "client_organisation": "B-CLIENT"},
        ),
    ],
    "listCases": [Probe("list", "/api/v1/cases")],
    "getCase": [Probe("record", "/api/v1/cases/{coi}")],
    "registerUnit": [
        Probe(
            "record",
            "/api/v1/cases/{coi}/units",
            body=lambda i, o: {"kind": "PRC", "product": "Stolen", "site": "KSB-LAB"},
        )
    ],
    "registerSample": [
        Probe(
            "record",
            "/api/v1/cases/{coi}/samples",
            body=lambda i, o: {
                "description": "Stolen blood",
                "site": "KSB-LAB",
                "consent_ref": "B-CONSENT-1",
            },
        )
    ],
    "caseTimeline": [Probe("record", "/api/v1/cases/{coi}/timeline")],
    "verifyChain": [Probe("record", "/api/v1/cases/{coi}/verify")],
    "getUnit": [Probe("record", "/api/v1/units/{prc}"), Probe("record", "/api/v1/units/{aph}")],
    "releaseUnit": [Probe("record", "/api/v1/units/{prc}/release", body=lambda i, o: {"password": PASSWORD})],
    "storeSample": [
        Probe(
            "record",
            "/api/v1/units/{prc}/storage",
            body=lambda i, o: {"site": "KSB", "freezer": "F1", "rack": "1", "box": "1", "position": "A1"},
        )
    ],
    "holdUnit": [
        Probe(
            "record",
            "/api/v1/units/{prc}/hold",
            body=lambda i, o: {"reason": "B holds A", "password": PASSWORD},
        )
    ],
    "releaseUnitHold": [
        Probe(
            "record",
            "/api/v1/units/{prc}/hold/release",
            body=lambda i, o: {"reason": "B releases A", "password": PASSWORD},
        )
    ],
    "recordDeviation": [
        Probe(
            "record",
            "/api/v1/cases/{coi}/deviations",
            body=lambda i, o: {
                "description": "B describes A",
                "impact": "none",
                "disposition": "pending",
                # The placeholder form of the ids (when answers are compared) is no number.
                "event_ids": [int(i["event_id"])] if i["event_id"].isdigit() else [],
                "password": PASSWORD,
            },
        )
    ],
    "cancelCase": [
        Probe(
            "record",
            "/api/v1/cases/{coi}/cancel",
            body=lambda i, o: {"reason": "B cancels A", "password": PASSWORD},
        )
    ],
    "reviewRecord": [
        Probe("record", "/api/v1/cases/{coi}/review", body=lambda i, o: {"password": PASSWORD}),
    ],
    "correctEvent": [
        Probe(
            "record",
            "/api/v1/events/{event_id}/corrections",
            body=lambda i, o: {"reason": "B rewrites A", "fields": {"site": "KSB"}},
        )
    ],
    "createShipment": [
        Probe("record", "/api/v1/shipments", body=_shipment_plan),
        Probe("record", "/api/v1/shipments", body=_own_case_with_their_unit),
        Probe("record", "/api/v1/shipments", body=_own_case_with_their_logger),
        # A's case planned with B's courier company named at creation: as unknown as without it.
        Probe(
            "record",
            "/api/v1/shipments",
            body=lambda i, o: _shipment_plan(i, o) | {"courier_organisation": "B-CARRIER"},
        ),
    ],
    "listShipments": [Probe("list", "/api/v1/shipments")],
    "decideReceipt": [Probe("record", "/api/v1/shipments/{ship_out}/receipt", body=lambda i, o: _RECEIPT)],
    "receiptView": [Probe("record", "/api/v1/shipments/{ship_out}/receipt")],
    "getShipment": [
        Probe("record", "/api/v1/shipments/{ship_out}"),
        Probe("record", "/api/v1/shipments/{ship_in}"),
    ],
    "confirmHandover": [Probe("record", "/api/v1/handovers/{handover_id}/confirm", body=lambda i, o: {})],
    "recordScan": [
        Probe("record", "/api/v1/scans", body=_scan(action.value, *codes, **extra))
        for action in Action
        for codes, extra in (
            (("{ship_out}", "{prc}"), {}),
            (("{prc}",), {}),
            (("{ship_in}",), {}),
            (("{b_unit}", "{prc}"), {}),
            (("&/{coi}", "{prc}"), {}),
        )
        for extra in [
            extra
            | {
                Action.HANDOVER: {"handover_to": "b-courier"},
                Action.STORE: {"storage_location": "B freezer"},
                Action.DISPOSE: {"reason": "B disposes of A"},
                Action.INFUSE: {
                    "signatures": [
                        {"username": "b-pharmacist", "password": PASSWORD, "meaning": "verified at bedside"},
                        {"username": "pharm", "password": PASSWORD, "meaning": "administered"},
                    ]
                },
            }.get(action, {})
        ]
    ],
    "acknowledgeAlert": [
        Probe("record", "/api/v1/alerts/{alert_id}/acknowledge", body=lambda i, o: {"comment": "B was here"})
    ],
    "closeAlert": [
        Probe("record", "/api/v1/alerts/{alert_id}/close", body=lambda i, o: {"reason": "B closes"})
    ],
    "listAlerts": [
        Probe("list", "/api/v1/alerts"),
        Probe("list", "/api/v1/alerts", query={"coi": "{coi}"}),
        Probe("list", "/api/v1/alerts", query={"shipment_id": "{ship_out}"}),
    ],
    "stream": [Probe("own")],  # never ends by itself; its site filter is tested in tests/e2e/test_stream.py
    "label": [
        Probe("record", "/api/v1/labels/bag/{prc}.zpl"),
        Probe("record", "/api/v1/labels/shipment/{ship_out}.zpl"),
        Probe("record", "/api/v1/labels/wristband/{coi}.zpl"),
        Probe("record", "/api/v1/labels/asset/{logger_id}.zpl"),
    ],
    "printLabel": [
        Probe("record", "/api/v1/labels/bag/{prc}.zpl", body=lambda i, o: {}),
        Probe("record", "/api/v1/labels/asset/{logger_id}.zpl", body=lambda i, o: {}),
    ],
    "lendLogger": [
        Probe(
            "record",
            "/api/v1/loggers/{logger_id}/loans",
            body=lambda i, o: {"site": "KSB", "reason": "B borrows it"},
        )
    ],
    "listLoggerLoans": [Probe("record", "/api/v1/loggers/{logger_id}/loans")],
    "revokeLoggerLoan": [
        Probe(
            "record",
            "/api/v1/loggers/{logger_id}/loans/KSB/revoke",
            body=lambda i, o: {"reason": "B revokes"},
        )
    ],
    "ingestTelemetry": [Probe("guard", "/api/v1/ingest/telemetry", body=lambda i, o: {})],
    "listDeadLetters": [Probe("guard", "/api/v1/dead-letters")],
    "getLogger": [Probe("record", "/api/v1/loggers/{logger_id}")],
    "updateLogger": [
        Probe(
            "record",
            "/api/v1/loggers/{logger_id}",
            body=lambda i, o: {"owner_site": "KSB", "reason": "B takes it"},
            method="PATCH",
        )
    ],
    "listLoggers": [Probe("list", "/api/v1/loggers")],
    "registerLogger": [
        Probe("record", "/api/v1/loggers", body=lambda i, o: {"id": "LGR-B0001", "owner_site": "CTA"})
    ],
    "listLoggerReadings": [Probe("record", "/api/v1/loggers/{logger_id}/readings")],
    "rotateLoggerBrokerPassword": [
        Probe(
            "record", "/api/v1/loggers/{logger_id}/broker-password", body=lambda i, o: {"reason": "B rotates"}
        )
    ],
    "metrics": [Probe("guard", "/metrics")],
    "caseRecordJson": [Probe("record", "/api/v1/cases/{coi}/record.json")],
    "caseReportPdf": [Probe("record", "/api/v1/cases/{coi}/report.pdf")],
    "captureEpcis": [Probe("record", "/api/v1/epcis/capture", body=_epcis)],
    # A's organisation has no capture job here: another site's job is tried in test_epcis_exchange.py
    # (answered as one that does not exist).
    "listEpcisCaptures": [Probe("list", "/api/v1/epcis/capture")],
    "getEpcisCapture": [Probe("record", "/api/v1/epcis/capture/" + "0" * 32)],
    "discoverEpcisCapture": [Probe("own")],  # the capture interface's limits, the same for everyone
    # Products' GTINs are the network's master data, like the site directory; only administrators set them.
    "listEpcisProducts": [Probe("own", "/api/v1/epcis/products")],
    "setEpcisProductGtin": [
        Probe(
            "guard",
            "/api/v1/epcis/products/Apheresis",
            body=lambda i, o: {"gtin": "07612345000022"},
            method="PUT",
        )
    ],
    "queryEpcisEvents": [
        Probe("list", "/api/v1/epcis/events"),
        Probe("list", "/api/v1/epcis/events", query={"MATCH_epc": "urn:celltrail:isbt128:unit:{prc}"}),
    ],
    "caseEpcis": [Probe("record", "/api/v1/cases/{coi}/epcis")],
    "shipmentEpcis": [Probe("record", "/api/v1/shipments/{ship_out}/epcis")],
    "alertsCsv": [
        Probe("list", "/api/v1/exports/alerts.csv"),
        Probe("guard", "/api/v1/exports/alerts.csv", query={"site": "USZ"}),
    ],
    "loggerReadingsCsv": [Probe("record", "/api/v1/exports/loggers/{logger_id}/readings.csv")],
    "shipmentReadingsCsv": [Probe("record", "/api/v1/shipments/{ship_out}/readings.csv")],
    # Profiles of a site, their versions and two-person approval: test_security_object_profiles.py.
    "createProfileVersion": [Probe("own")],
    "approveProfileVersion": [Probe("own")],
    "refuseProfileVersion": [Probe("own")],
    "listApiKeys": [Probe("guard", "/api/v1/api-keys")],
    "createApiKey": [Probe("guard", "/api/v1/api-keys", body=lambda i, o: {})],
    "revokeApiKey": [Probe("guard", "/api/v1/api-keys/1/revoke", body=lambda i, o: {})],
    "getProfile": [Probe("own", "/api/v1/profiles/fresh")],
    "getProfileVersion": [Probe("own", "/api/v1/profiles/fresh/versions/1")],
    "listProfiles": [Probe("own", "/api/v1/profiles")],
    "listSubscriptions": [Probe("guard", "/api/v1/sites/USZ/subscriptions")],
    "createSubscription": [
        Probe(
            "guard",
            "/api/v1/sites/USZ/subscriptions",
            body=lambda i, o: {"channel": "email", "target": "b@b.example"},
        )
    ],
    "deactivateSubscription": [
        Probe("guard", "/api/v1/sites/USZ/subscriptions/{subscription_id}/deactivate", body=lambda i, o: {})
    ],
    "subscriptionDeliveries": [
        Probe("guard", "/api/v1/sites/USZ/subscriptions/{subscription_id}/deliveries")
    ],
    "shipmentTemperature": [Probe("record", "/api/v1/shipments/{ship_out}/temperature")],
    "caseTemperature": [Probe("record", "/api/v1/cases/{coi}/temperature")],
    "decodeFrame": [Probe("own")],  # decodes an image; reads no record
    "verifyAtBedside": [
        Probe("record", "/api/v1/bedside/verifications", body=_bedside("&/{coi}", "{prc}")),
        Probe("record", "/api/v1/bedside/verifications", body=_bedside("{b_case}", "{prc}")),
        Probe("record", "/api/v1/bedside/verifications", body=_bedside("&/{coi}", "{b_unit}")),
    ],
    "registerAllogeneicBatch": [
        Probe(
            "record",
            "/api/v1/allogeneic/batches",
            body=lambda i, o: {
                "batch_id": "B-STOLEN-1",
                "source_kind": "donor",
                "source_id": "D-1",
                "product": "Stolen",
                "site": "CTA",
                "units": 1,
            },
        )
    ],
    "caseAllocations": [Probe("record", "/api/v1/cases/{coi}/allocations")],
    "openAllogeneicRecipient": [
        Probe(
            "record",
            "/api/v1/allogeneic/recipients",
            body=lambda i, o: {"treatment_site": "USZ", "therapy": "X"},
        )
    ],
    "allocateAllogeneicUnit": [
        # A's bag to B's own case, and B's own bag to A's case: either answers as for ids that exist nowhere.
        Probe(
            "record",
            "/api/v1/allogeneic/allocations",
            body=lambda i, o: {"site": "KSB", "unit": i["prc"], "recipient": o.b_case, "password": PASSWORD},
        ),
        Probe(
            "record",
            "/api/v1/allogeneic/allocations",
            body=lambda i, o: {"site": "KSB", "unit": o.b_unit, "recipient": i["coi"], "password": PASSWORD},
        ),
    ],
    "withdrawAllogeneicAllocation": [
        # Withdrawing A's bag's allocation from B's case, or B's own bag's from A's case.
        Probe(
            "record",
            "/api/v1/allogeneic/withdrawals",
            body=lambda i, o: {
                "site": "KSB",
                "unit": i["prc"],
                "recipient": o.b_case,
                "reason": "probe",
                "password": PASSWORD,
            },
        ),
        Probe(
            "record",
            "/api/v1/allogeneic/withdrawals",
            body=lambda i, o: {
                "site": "KSB",
                "unit": o.b_unit,
                "recipient": i["coi"],
                "reason": "probe",
                "password": PASSWORD,
            },
        ),
    ],
    # The book of A's site: refused to anyone not bound to it.
    "allogeneicBedsideBook": [Probe("guard", "/api/v1/allogeneic/bedside-book", query={"site": "USZ"})],
    "shipmentReceivers": [
        Probe("record", "/api/v1/shipments/{ship_out}/receivers"),
        Probe("record", "/api/v1/shipments/{ship_in}/receivers"),
    ],
    "identifyCodes": [
        Probe(
            "list",
            "/api/v1/identify",
            body=lambda i, o: {"codes": [i["prc"], i["ship_out"], f"&/{i['coi']}"]},
        )
    ],  # Orchestration (docs/planning.md): a case's order, plan and booking go through the planning gate;
    # capacity and slots belong to the site in the path.
    "listPlanningProducts": [Probe("own", "/api/v1/planning/products")],
    # The catalogue is no organisation's record: changed by QA of a site that makes the product (B's QA
    # makes none of A's) or an administrator.
    "setProductLimits": [
        Probe(
            "guard",
            "/api/v1/planning/products/car-t/limits",
            body=lambda i, o: {
                "thaw_to_infusion_min": 5,
                "storage_min_c": -196,
                "storage_max_c": -150,
                "shelf_life_days": 3650,
                "reason": "B widens A's limits",
            },
            method="PUT",
        )
    ],
    "listTreatmentOrders": [Probe("list", "/api/v1/orders")],
    "createTreatmentOrder": [Probe("record", "/api/v1/cases/{coi}/order", body=_order)],
    "decideTreatmentOrder": [
        Probe(
            "record",
            "/api/v1/cases/{coi}/order/decision",
            body=lambda i, o: {"decision": "accept", "password": PASSWORD},
        )
    ],
    "withdrawTreatmentOrder": [
        Probe("record", "/api/v1/cases/{coi}/order/withdraw", body=lambda i, o: {"reason": "B withdraws it"})
    ],
    "getCasePlan": [Probe("record", "/api/v1/cases/{coi}/plan")],
    "caseSlotChoices": [Probe("record", "/api/v1/cases/{coi}/slots")],
    "bookCollection": [Probe("record", "/api/v1/cases/{coi}/booking", body=lambda i, o: {"slot_id": 1})],
    "rescheduleCollection": [
        Probe(
            "record",
            "/api/v1/cases/{coi}/booking/reschedule",
            body=lambda i, o: {"slot_id": 1, "reason": "B moves it"},
        )
    ],
    "cancelCollection": [
        Probe("record", "/api/v1/cases/{coi}/booking/cancel", body=lambda i, o: {"reason": "B cancels it"})
    ],
    "capacityCalendar": [Probe("guard", "/api/v1/sites/CTA/calendar")],
    "setCapacity": [
        Probe(
            "guard",
            "/api/v1/sites/CTA/capacity/car-t",
            body=lambda i, o: {"runs_per_day": 0, "suites": ["B"]},
            method="PUT",
        )
    ],
    "addBlackout": [
        Probe("guard", "/api/v1/sites/CTA/blackouts", body=lambda i, o: {"day": "2026-12-24", "reason": "B"})
    ],
    "removeBlackout": [Probe("guard", "/api/v1/sites/CTA/blackouts/2026-12-24", method="DELETE")],
    "listCollectionSlots": [Probe("guard", "/api/v1/sites/USZ-APH/slots")],
    "addCollectionSlots": [
        Probe(
            "guard",
            "/api/v1/sites/USZ-APH/slots",
            body=lambda i, o: {"slots": [{"starts_at": "2026-12-24T08:00:00", "minutes": 60}]},
        )
    ],
    # Patient identity (docs/patient-data.md): the treating site's only; another site's case is no case.
    "setPatientIdentity": [
        Probe(
            "record",
            "/api/v1/cases/{coi}/patient",
            body=lambda i, o: {"name": "B Writes A", "hospital_number": "B-1"},
            method="PUT",
        )
    ],
    "readPatientIdentity": [
        Probe("record", "/api/v1/cases/{coi}/patient"),  # no reason: still no case
        Probe("record", "/api/v1/cases/{coi}/patient", query={"reason": "care-coordination"}),
        Probe("record", "/api/v1/cases/{coi}/patient", query={"reason": "bedside-verification"}),
    ],
    # A site's wristband policy is the network's master data, like the site directory.
    "getWristbandPolicy": [Probe("own", "/api/v1/sites/USZ/wristband-policy")],
    "setWristbandPolicy": [
        Probe("guard", "/api/v1/sites/USZ/wristband-policy", body=lambda i, o: {"fields": []}, method="PUT")
    ],
    # Organisations (docs/organisations.md): the directory and memberships are the administrators'; a leg's
    # courier company and a case's client are set through the gate, by planners who see the record.
    "listOrganisations": [Probe("guard", "/api/v1/organisations")],
    "createOrganisation": [
        Probe(
            "guard",
            "/api/v1/organisations",
            body=lambda i, o: {"code": "B-ORG", "name": "B", "kind": "client"},
        )
    ],
    "setSiteOrganisation": [
        Probe(
            "guard",
            "/api/v1/sites/USZ/organisation",
            body=lambda i, o: {"organisation": "B-CLIENT"},
            method="PUT",
        )
    ],
    "setUserOrganisation": [
        Probe(
            "guard",
            "/api/v1/users/coord/organisation",
            body=lambda i, o: {"organisation": None},
            method="PUT",
        )
    ],
    "assignCourier": [
        Probe(
            "record",
            path,
            body=lambda i, o: {"organisation": "B-CARRIER", "reason": "B carries A's leg"},
            method="PUT",
        )
        for path in ("/api/v1/shipments/{ship_out}/courier", "/api/v1/shipments/{ship_in}/courier")
    ],
    "setCaseClient": [
        Probe(
            "record",
            "/api/v1/cases/{coi}/client",
            body=lambda i, o: {"organisation": "B-CLIENT"},
            method="PUT",
        )
    ],
    "getCaseClient": [Probe("record", "/api/v1/cases/{coi}/client")],
    "getKpis": [Probe("list", "/api/v1/kpis")],
    "getKpisCsv": [Probe("list", "/api/v1/kpis.csv")],
}


def openapi_operations(app: Any) -> set[str]:
    schema = app.openapi_schema.to_schema()
    return {
        operation["operationId"]
        for item in schema["paths"].values()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


def test_every_api_operation_has_a_row(app):
    operations = openapi_operations(app)
    assert len(operations) > 60
    missing = sorted(operations - set(TABLE))
    assert missing == [], f"operations with no row in the object-gate table: {missing}"
    stale = sorted(set(TABLE) - operations)
    assert stale == [], f"rows for operations that no longer exist: {stale}"


def test_every_scan_action_is_tried():
    tried = {
        probe.body(NOWHERE, Organisations(None, {}, NOWHERE))["action"]  # type: ignore[arg-type,misc]
        for probe in TABLE["recordScan"]
        if probe.body is not None
    }
    assert tried == {a.value for a in Action}


# ------------------------------------------------------------------------------------------ the calls


def _fill(text: str, ids: dict[str, str]) -> str:
    return text.format(**ids) if "{" in text else text


async def _call(
    client: Any, probe: Probe, who: dict[str, str], ids: dict[str, str], orgs: Organisations
) -> Any:
    path = _fill(probe.path, ids)
    params = {k: _fill(v, ids) for k, v in probe.query.items()}
    method = probe.method or ("GET" if probe.body is None else "POST")
    body = None if probe.body is None else probe.body(ids, orgs)
    return await client.request(method, path, headers=who, params=params, json=body)


def _named(probe: Probe, orgs: Organisations) -> set[str]:
    """Which of the ids the probe's request names."""
    markers = {key: f"@@{key}@@" for key in NOWHERE}
    text = probe.path + json.dumps(probe.query)
    if probe.body is not None:
        text += json.dumps(probe.body(markers, orgs))
    return {key for key in NOWHERE if f"{{{key}}}" in text or markers[key] in text}


def _normalised(response: Any, ids: dict[str, str]) -> tuple[int, Any]:
    """Status and body with the named ids set aside, so that A's answer and nowhere's can be compared.
    Whole tokens only: a numeric id must not eat the 1 of /api/v1."""
    text = response.text
    for name, value in sorted(ids.items(), key=lambda kv: -len(kv[1])):
        text = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", f"<{name}>", text)
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
    return response.status_code, _reasons_unordered(_without_event_ids(body))


def _reasons_unordered(body: Any) -> Any:
    # A refusal lists its reasons sorted by the codes, so a real id and its stand-in may sort differently
    # among codes the caller cannot see either (a courier company sees no unit, not even B's own).
    if isinstance(body, dict) and isinstance(body.get("detail"), str) and "; " in body["detail"]:
        head, _, rest = body["detail"].partition(": ")
        return body | {"detail": (head, sorted(rest.split("; ")))}
    return body


def _without_event_ids(body: Any) -> Any:
    # Ids of B's own records (its orphan refusals, an EPCIS event's hash of what B sent) differ by nature.
    if isinstance(body, dict):
        return {k: _without_event_ids(v) for k, v in body.items() if k != "event_id"}
    if isinstance(body, list):
        return [_without_event_ids(v) for v in body]
    return body


def _leaks(text: str, orgs: Organisations, requested: set[str]) -> list[str]:
    names = [v for k, v in orgs.a_ids.items() if not k.endswith("_id") or k == "logger_id"]
    return [v for v in [*names, *orgs.secrets] if v not in requested and v in text]


async def test_another_organisation_touches_nothing_of_ours(app, client, database_url):
    orgs = await two_organisations(client)
    before = await snapshot(database_url, orgs)
    tried = 0
    # Lists first: afterwards B's own refusal alerts quote the ids B typed, which is B's record, not A's.
    rows = [(op, probe) for op, probes in TABLE.items() for probe in probes if probe.kind != "own"]
    for operation, probe in sorted(rows, key=lambda row: row[1].kind != "list"):
        if True:
            for role, who in [*orgs.b.items(), *orgs.others.items()]:
                theirs = await _call(client, probe, who, orgs.a_ids, orgs)
                where = (operation, probe.path, str(role), theirs.text[:300])
                assert theirs.status_code < 500, where
                requested = {v for v in orgs.a_ids.values() if v in _fill(probe.path, orgs.a_ids)}
                if probe.body is not None:
                    requested |= {
                        v for v in orgs.a_ids.values() if v in json.dumps(probe.body(orgs.a_ids, orgs))
                    }
                requested |= {_fill(v, orgs.a_ids) for v in probe.query.values()}
                assert _leaks(theirs.text, orgs, requested) == [], where
                if probe.kind == "record":
                    nowhere = await _call(client, probe, who, NOWHERE, orgs)
                    named = _named(probe, orgs)
                    mine = _normalised(theirs, {k: orgs.a_ids[k] for k in named})
                    assert mine == _normalised(nowhere, {k: NOWHERE[k] for k in named}), where
                    # A batch (EPCIS capture) answers per event: every one of them rejected.
                    batch = theirs.status_code in (200, 202) and not theirs.json().get("accepted", True)
                    assert batch or theirs.status_code in (401, 403, 404, 409, 422), where
                elif probe.kind == "guard":
                    assert theirs.status_code in (403, 404), where
                else:
                    assert probe.kind == "list", probe
                    assert theirs.status_code in (200, 403), where
                tried += 1
    assert tried > 200
    assert await snapshot(database_url, orgs) == before


async def test_a_refused_scan_of_anothers_item_alerts_only_the_scanners_sites(client, database_url):
    """Finding 1 and 2 of issue 17, as they were tried: a pharmacist of another site disposes of a bag in
    transit to a hospital; the bag stays in transit and nothing is addressed to A."""
    orgs = await two_organisations(client)
    prc = orgs.a_ids["prc"]
    response = await client.post(
        "/api/v1/scans",
        headers=orgs.b[Role.PHARMACIST],
        json={
            "idempotency_key": str(uuid.uuid4()),
            "action": "dispose",
            "site": "KSB",
            "codes": [prc],
            "reason": "dropped",
        },
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["refusal"], body["coi"], body["event_id"]) == ("unknown_item", None, None)
    assert body["detail"] == f"unknown item: unknown unit {prc}"
    unit = await orgs.world.ok("pharm", "GET", f"/api/v1/units/{prc}")
    assert unit["status"] == "in_transit"
    # The refusal is B's to explain: an alert to B's scanning site, none to A's.
    b_alerts = await client.get("/api/v1/alerts", headers=orgs.b[Role.COORDINATOR])
    assert [a["sites"] for a in b_alerts.json()] == [["KSB"]]
    a_alerts = await orgs.world.ok("coord", "GET", "/api/v1/alerts")
    assert all("KSB" not in a["sites"] for a in a_alerts)
    # B's coordinator cannot acknowledge or close A's alerts.
    for alert in a_alerts:
        for verb, body_ in (("acknowledge", {"comment": "mine now"}), ("close", {"reason": "mine now"})):
            answer = await client.post(
                f"/api/v1/alerts/{alert['id']}/{verb}", headers=orgs.b[Role.COORDINATOR], json=body_
            )
            assert answer.status_code == 404, answer.text


async def test_a_claimed_site_is_no_address(client, database_url):
    """A scan naming a site its sender is not bound to refuses without alerting that site."""
    orgs = await two_organisations(client)
    response = await client.post(
        "/api/v1/scans",
        headers=orgs.b[Role.PHARMACIST],
        json={
            "idempotency_key": str(uuid.uuid4()),
            "action": "receive",
            "site": "USZ",
            "codes": ["SHP-2026-424242"],
        },
    )
    assert response.status_code == 422, response.text
    a_alerts = await orgs.world.ok("pharm", "GET", "/api/v1/alerts")
    assert all("USZ" not in a["sites"] or "KSB" not in a["sites"] for a in a_alerts)
    assert not [a for a in a_alerts if "SHP-2026-424242" in a["detail"]]
