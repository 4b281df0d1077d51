"""Building blocks for custody tests: the sites and people of one vein-to-vein journey, and scan calls."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.helpers import admin, make_site, make_user

PASSWORD = "correct horse battery"

SITES = {"USZ": "hospital", "USZ-APH": "apheresis", "CTA": "manufacturing", "CRX": "courier_depot"}
PEOPLE = {
    "coord": (["coordinator"], ["USZ", "USZ-APH", "CTA", "CRX"]),
    "nurse": (["pharmacist"], ["USZ-APH", "USZ"]),
    "courier1": (["courier"], ["CRX", "USZ-APH", "CTA", "USZ"]),
    "courier2": (["courier"], ["CRX", "USZ-APH", "CTA", "USZ"]),
    "mfg": (["manufacturing"], ["CTA"]),
    "qa": (["qa"], ["CTA"]),
    "pharm": (["pharmacist"], ["USZ"]),
    "pharm2": (["pharmacist"], ["USZ"]),
}


@dataclass
class World:
    client: Any
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    async def call(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        return await self.client.request(method, path, headers=self.headers[who], **kwargs)

    async def ok(self, who: str, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.call(who, method, path, **kwargs)
        assert response.status_code == status, (path, response.text)
        return response.json()

    async def scan(
        self, who: str, action: str, site: str, *codes: str, key: str | None = None, **extra: Any
    ) -> Any:
        body = {
            "idempotency_key": key or str(uuid.uuid4()),
            "action": action,
            "site": site,
            "codes": list(codes),
            "device_time": datetime.now(UTC).isoformat(),
            **extra,
        }
        return await self.call(who, "POST", "/api/v1/scans", json=body)

    async def scan_ok(self, who: str, action: str, site: str, *codes: str, **extra: Any) -> dict[str, Any]:
        response = await self.scan(who, action, site, *codes, **extra)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        assert result["outcome"] == "accepted"
        return result

    async def new_case(self, therapy: str = "CAR-T (autologous)") -> str:
        case = await self.ok(
            "coord",
            "POST",
            "/api/v1/cases",
            201,
            json={"treatment_site": "USZ", "therapy": therapy, "patient_ref": "MRN-0042"},
        )
        return str(case["coi"])

    async def unit(
        self,
        who: str,
        coi: str,
        kind: str,
        site: str,
        expires_at: str | None = None,
        from_units: list[str] | None = None,
    ) -> str:
        if kind == "PRC" and from_units is None:
            # A product bag is made from starting material: by default the case's apheresis units the
            # registering site holds (received, stored, or consumed into an earlier bag).
            found = await self.ok(who, "GET", f"/api/v1/cases/{coi}/timeline")
            from_units = [
                u["id"]
                for u in found["units"]
                if u["kind"] == "APH"
                and u["site"] == site
                and u["status"] in ("received", "stored", "consumed")
            ]
        unit = await self.ok(
            who,
            "POST",
            f"/api/v1/cases/{coi}/units",
            201,
            json={
                "kind": kind,
                "product": "Autologous CAR-T" if kind == "PRC" else "Apheresis",
                "site": site,
                **({"expires_at": expires_at} if expires_at else {}),
                **({"from_units": from_units} if from_units else {}),
            },
        )
        return str(unit["id"])

    async def shipment(
        self,
        who: str,
        coi: str,
        from_site: str,
        to_site: str,
        units: list[str],
        profile: str = "fresh",
        logger_id: str | None = None,
    ) -> str:
        departure = datetime.now(UTC)
        body: dict[str, Any] = {
            "coi": coi,
            "from_site": from_site,
            "to_site": to_site,
            "container_id": "SHIPPER-7",
            "profile": profile,
            "planned_departure": departure.isoformat(),
            "planned_arrival": (departure + timedelta(hours=6)).isoformat(),
            "units": units,
            "seals": ["SEAL-1001"],
            "waybill": "WB-778899",
        }
        if logger_id:
            body["logger_id"] = logger_id
        shipment = await self.ok(who, "POST", "/api/v1/shipments", 201, json=body)
        return str(shipment["id"])


async def build_world(client: Any) -> World:
    root = await admin(client)
    for code, kind in SITES.items():
        await make_site(client, root, code, kind=kind)
    world = World(client, {"admin": root})
    for username, (roles, sites) in PEOPLE.items():
        world.headers[username] = await make_user(client, root, username, roles, sites, password=PASSWORD)
    return world


async def starting_material_at_manufacturing(world: World) -> tuple[str, str, str]:
    """Collection to receipt at manufacturing; returns (coi, apheresis unit, shipment)."""
    coi = await world.new_case()
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    await world.scan_ok("mfg", "receive", "CTA", ship)
    await world.scan_ok("mfg", "receive", "CTA", ship, aph)
    await accept_receipt(world, "mfg", ship)
    return coi, aph, ship


async def accept_receipt(world: World, who: str, ship: str) -> None:
    """The signed receipt decision: every check passed, accepted."""
    await world.ok(
        who,
        "POST",
        f"/api/v1/shipments/{ship}/receipt",
        201,
        json={
            "decision": "accept",
            "password": PASSWORD,
            "checklist": {"seals_intact": True, "shipper_intact": True, "temperature_reviewed": True},
        },
    )


async def released_bag(world: World) -> tuple[str, str]:
    """Starting material received at manufacturing, a product bag labelled and QA-released: (coi, bag)."""
    coi, aph, _ship = await starting_material_at_manufacturing(world)
    prc = await world.unit("mfg", coi, "PRC", "CTA", from_units=[aph])
    await world.scan_ok("mfg", "label", "CTA", prc)
    await world.ok("qa", "POST", f"/api/v1/units/{prc}/release", 201, json={"password": PASSWORD})
    return coi, prc


async def stored_bag(world: World) -> tuple[str, str]:
    """A released product bag received and stored at USZ: (coi, bag)."""
    coi, prc = await released_bag(world)
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship, prc)
    await world.scan_ok("courier1", "pickup", "CTA", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship, prc)
    await accept_receipt(world, "pharm", ship)
    await world.scan_ok("pharm", "store", "USZ", prc, storage_location="LN2-1")
    return coi, prc


async def bag_at_bedside(world: World) -> tuple[str, str]:
    """A released product bag, received, stored, dispensed and thawed at USZ: (coi, bag)."""
    coi, prc = await stored_bag(world)
    await world.scan_ok("pharm", "dispense", "USZ", prc)
    await world.scan_ok("pharm", "thaw", "USZ", prc)
    return coi, prc
