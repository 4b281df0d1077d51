"""The compose file's scale profile (issue 26): `docker compose --profile scale up` adds a second backend
replica and a second bridge, the shape tests/integration/scaling/test_scale_out.py runs for real. No
container engine here, so check what the file promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from backend.settings import FIELDS
from firmware_bridge.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]


def services() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return spec["services"]  # type: ignore[no-any-return]


def test_the_scale_profile_adds_a_replica_and_a_bridge_only() -> None:
    scaled = {name for name, service in services().items() if "scale" in service.get("profiles", [])}
    assert scaled == {"backend-2", "bridge-2"}
    # Their volumes are declared like every other's.
    declared = set(yaml.safe_load((ROOT / "compose.yaml").read_text())["volumes"])
    for name in scaled:
        assert {v.split(":")[0] for v in services()[name]["volumes"]} <= declared, name


def test_the_second_replica_is_the_first_one_again() -> None:
    backend, replica = services()["backend"], services()["backend-2"]
    assert replica["image"] == backend["image"]
    assert replica["command"] == backend["command"]
    # Same database, broker, secrets and record key (same data volume): one record, two servers.
    assert replica["environment"] == backend["environment"]
    assert replica["volumes"] == backend["volumes"]
    assert replica["ports"] == ["8001:8000"]
    assert replica["depends_on"]["backend"] == {"condition": "service_healthy"}
    for name in replica["environment"]:
        assert name.removeprefix("CELLTRAIL_").lower() in FIELDS, name


def test_the_bridges_share_one_subscription_group_and_keep_apart_what_is_their_own() -> None:
    first, second = services()["bridge"], services()["bridge-2"]
    one, two = first["environment"], second["environment"]
    assert second["image"] == first["image"]
    assert second["command"] == first["command"]
    # One variable names the group for both, so they cannot end up in two groups (each getting all).
    assert one["CELLTRAIL_BRIDGE_SHARED_GROUP"] == two["CELLTRAIL_BRIDGE_SHARED_GROUP"]
    assert one["CELLTRAIL_BRIDGE_SHARED_GROUP"].startswith("${CELLTRAIL_BRIDGE_SHARED_GROUP")
    assert two["CELLTRAIL_BACKEND_URL"] == "http://backend-2:8000"
    assert two["CELLTRAIL_BRIDGE_CLIENT_ID"] != one.get("CELLTRAIL_BRIDGE_CLIENT_ID")
    assert second["volumes"] != first["volumes"], "each bridge needs a disk buffer of its own"
    assert two["CELLTRAIL_BRIDGE_API_KEY"] == one["CELLTRAIL_BRIDGE_API_KEY"]
    bridge_names = set(ENV_NAMES.values()) | {"CELLTRAIL_MQTT_URL", "CELLTRAIL_BACKEND_URL"}
    for name in two:
        assert name in bridge_names, name
