"""The real backend (``celltrail serve``) as a process that can be stopped and started again on the same
database and port, and a synchronous HTTP world of sites, people, a case and a packed shipment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from backend.embedded.ports import free_port

ADMIN_PASSWORD = "admin-password-for-scanner-it"
PASSWORD = "correct horse battery"
SITES = {"USZ-APH": "apheresis", "CTA": "manufacturing", "CRX": "courier_depot"}
PEOPLE = {
    "coord": (["coordinator"], ["USZ-APH", "CTA", "CRX"]),
    "nurse": (["pharmacist"], ["USZ-APH"]),
    "courier1": (["courier"], ["USZ-APH", "CTA", "CRX"]),
    "mfg": (["manufacturing"], ["CTA"]),
}


class RealBackend:
    def __init__(self, database_url: str, directory: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "backend.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CELLTRAIL_")},
            "CELLTRAIL_DATABASE_URL": database_url,
            "CELLTRAIL_PORT": str(self.port),
            "CELLTRAIL_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "CELLTRAIL_LOG_FORMAT": "json",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "backend did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None


@dataclass
class World:
    client: httpx.Client
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def ok(self, who: str, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=self.headers[who], **kwargs)
        assert response.status_code == status, (path, response.text)
        return response.json() if "json" in response.headers.get("content-type", "") else response

    def scan(self, who: str, action: str, site: str, *codes: str) -> dict[str, Any]:
        body = {
            "idempotency_key": str(uuid.uuid4()),
            "action": action,
            "site": site,
            "codes": list(codes),
            "device_time": datetime.now(UTC).isoformat(),
        }
        result: dict[str, Any] = self.ok(who, "POST", "/api/v1/scans", 201, json=body)
        assert result["outcome"] == "accepted", result
        return result


def login(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def build_world(client: httpx.Client) -> World:
    world = World(client, {"admin": login(client, "admin", ADMIN_PASSWORD)})
    for code, kind in SITES.items():
        world.ok(
            "admin",
            "POST",
            "/api/v1/sites",
            201,
            json={"code": code, "name": f"Site {code}", "kind": kind, "time_zone": "Europe/Zurich"},
        )
    for username, (roles, sites) in PEOPLE.items():
        world.ok(
            "admin",
            "POST",
            "/api/v1/users",
            201,
            json={
                "username": username,
                "full_name": username.title(),
                "password": PASSWORD,
                "roles": roles,
                "sites": sites,
            },
        )
        world.headers[username] = login(client, username, PASSWORD)
    return world


def packed_shipment(world: World, units: int = 2) -> tuple[str, list[str], str]:
    """A case whose apheresis bags are labelled and packed at USZ-APH for CTA: (coi, units, shipment)."""
    coi = str(
        world.ok(
            "coord", "POST", "/api/v1/cases", 201, json={"treatment_site": "USZ-APH", "therapy": "CAR-T"}
        )["coi"]
    )
    expiry = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    bags = []
    for _ in range(units):
        unit = world.ok(
            "nurse",
            "POST",
            f"/api/v1/cases/{coi}/units",
            201,
            json={"kind": "APH", "product": "Apheresis", "site": "USZ-APH", "expires_at": expiry},
        )
        bags.append(str(unit["id"]))
        world.scan("nurse", "label", "USZ-APH", bags[-1])
    departure = datetime.now(UTC)
    shipment = world.ok(
        "coord",
        "POST",
        "/api/v1/shipments",
        201,
        json={
            "coi": coi,
            "from_site": "USZ-APH",
            "to_site": "CTA",
            "container_id": "SHIPPER-7",
            "profile": "fresh",
            "planned_departure": departure.isoformat(),
            "planned_arrival": (departure + timedelta(hours=6)).isoformat(),
            "units": bags,
        },
    )
    ship = str(shipment["id"])
    for bag in bags:
        world.scan("nurse", "pack", "USZ-APH", ship, bag)
    return coi, bags, ship
