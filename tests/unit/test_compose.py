"""compose.yaml cannot run here (no container engine), so check what it promises."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import yaml

from backend.settings import FIELDS

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_services_and_images():
    services = compose()["services"]
    # What `docker compose up` starts; the scale profile's are checked in test_compose_scale.py.
    assert {name for name, service in services.items() if "profiles" not in service} == {
        "postgres",
        "mosquitto",
        "backend",
        "bridge",
    }
    assert services["postgres"]["image"] == "postgres:16"
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert services["backend"]["build"] == "."
    assert services["bridge"]["image"] == services["backend"]["image"]
    assert services["backend"]["command"][:2] == ["celltrail", "serve"]
    assert services["bridge"]["command"] == ["celltrail", "bridge"]


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies():
    services = compose()["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services
            assert condition == {"condition": "service_healthy"}, (name, dependency)


def test_ports_and_named_volumes():
    spec = compose()
    services = spec["services"]
    assert "8000:8000" in services["backend"]["ports"]
    assert "1883:1883" in services["mosquitto"]["ports"]
    assert "ports" not in services["postgres"], "the database must not be published"
    declared = set(spec["volumes"])
    used = {
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if not volume.startswith("./")
    }
    assert used == declared
    assert {"pgdata", "mosquitto-data", "bridge-buffer"} <= declared
    for volume in [*services["mosquitto"]["volumes"], *services["postgres"]["volumes"]]:
        if volume.startswith("./"):
            assert (ROOT / volume.split(":")[0]).exists(), volume


def test_environment_names_are_real_settings_and_secrets_are_required():
    services = compose()["services"]
    backend_env = services["backend"]["environment"]
    for name in backend_env:
        assert name.startswith("CELLTRAIL_")
        assert name.removeprefix("CELLTRAIL_").lower() in FIELDS, name
    assert backend_env["CELLTRAIL_DATABASE_URL"].startswith(
        "postgresql://celltrail_app:${CELLTRAIL_DB_APP_PASSWORD}@postgres"
    )
    assert backend_env["CELLTRAIL_MIGRATION_DATABASE_URL"].startswith(
        "postgresql://celltrail_owner:${CELLTRAIL_DB_OWNER_PASSWORD}@postgres"
    )
    assert backend_env["CELLTRAIL_MQTT_URL"] == "mqtt://mosquitto:1883"
    text = (ROOT / "compose.yaml").read_text()
    # A missing secret must stop `docker compose up`, never fall back to an empty password.
    for secret in (
        "CELLTRAIL_DB_SUPERUSER_PASSWORD",
        "CELLTRAIL_DB_OWNER_PASSWORD",
        "CELLTRAIL_DB_APP_PASSWORD",
        "CELLTRAIL_ADMIN_PASSWORD",
        "BRIDGE_MQTT_PASSWORD",
        "BRIDGE_API_KEY",
        "MQTT_HEALTHCHECK_PASSWORD",
    ):
        assert re.search(r"\$\{" + secret + r":\?", text), secret
        assert f"{secret}=" in (ROOT / "deploy" / "env.example").read_text()
    bridge_env = services["bridge"]["environment"]
    assert bridge_env["CELLTRAIL_BACKEND_URL"] == "http://backend:8000"
    assert bridge_env["CELLTRAIL_BRIDGE_BUFFER_DIR"].startswith("/var/lib/celltrail")


def test_the_database_is_made_with_an_owner_and_an_application_role():
    """Least privilege (issue 18): the image's superuser only administers; an init script makes the
    schema owner (migrations) and the application role (the backend), whose passwords psql reads from
    the container's environment. tests/integration/test_database_roles.py runs the script for real."""
    postgres = compose()["services"]["postgres"]
    script = "./deploy/postgres/celltrail-roles.sql"
    assert f"{script}:/docker-entrypoint-initdb.d/10-celltrail-roles.sql:ro" in postgres["volumes"]
    assert (ROOT / script).is_file()
    superuser = postgres["environment"]["POSTGRES_USER"]
    for name in ("CELLTRAIL_DB_OWNER_PASSWORD", "CELLTRAIL_DB_APP_PASSWORD"):
        assert postgres["environment"][name] == f"${{{name}:?set {name} in .env}}"
    text = (ROOT / script).read_text()
    assert "\\getenv owner_password CELLTRAIL_DB_OWNER_PASSWORD" in text
    assert "\\getenv app_password CELLTRAIL_DB_APP_PASSWORD" in text
    assert "ALTER ROLE celltrail_app LOGIN NOSUPERUSER" in text
    backend_env = compose()["services"]["backend"]["environment"]
    for name in ("CELLTRAIL_DATABASE_URL", "CELLTRAIL_MIGRATION_DATABASE_URL"):
        assert not backend_env[name].startswith(f"postgresql://{superuser}:"), name


def test_mosquitto_config_requires_auth_acl_and_nodelay():
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text().splitlines()
    settings = dict(line.split(None, 1) for line in conf if line.strip() and not line.startswith("#"))
    assert settings["allow_anonymous"] == "false"
    assert settings["set_tcp_nodelay"] == "true"
    assert settings["acl_file"] == "/mosquitto/config/acl"
    assert "password_file" in settings
    assert settings["persistence"] == "true"
    acl = (ROOT / "deploy" / "mosquitto" / "acl").read_text()
    assert "pattern write celltrail/v1/loggers/%u/telemetry" in acl
    assert "user bridge\ntopic read celltrail/v1/loggers/+/telemetry" in acl


def test_yaml_round_trips_through_msgspec():
    # msgspec's YAML support is what the backend would use for config files; keep compose readable by it.
    assert msgspec.yaml.decode((ROOT / "compose.yaml").read_bytes())["name"] == "celltrail"


def test_the_record_key_and_checkpoints_outlive_the_backend_container():
    backend = compose()["services"]["backend"]
    data = backend["environment"]["CELLTRAIL_DATA_DIR"]
    assert f"backend-data:{data}" in backend["volumes"]
