"""One typed settings object, built from the environment when the process starts (never at import)."""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from backend.domain.addresses import parse_allow_list

PREFIX = "CELLTRAIL_"

LogFormat = Literal["auto", "json", "text"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and what is expected."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Unset means "start an embedded one" for `celltrail up`. The backend runs as this URL's user (the
    # application role, see backend/db/migrate.py); migrations, backup and restore use
    # migration_database_url (the schema owner) when set, else this one.
    database_url: str | None = None
    migration_database_url: str | None = None
    mqtt_url: str | None = None
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    data_dir: str = ".celltrail"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    public_url: str | None = None
    admin_password: str | None = None
    token_ttl_minutes: Annotated[int, msgspec.Meta(ge=1, le=60 * 24 * 30)] = 8 * 60
    db_pool_min: Annotated[int, msgspec.Meta(ge=1, le=100)] = 2
    db_pool_max: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "auto"
    broker_check_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    # The ISBT 128 Facility Identification Number that issues COIs (A9999 is not assigned to anyone).
    fin: Annotated[str, msgspec.Meta(pattern=r"^[A-NP-Z1-9][0-9]{4}$")] = "A9999"
    handover_confirm_minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 30
    housekeeping_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    # Alerting: e-mail for critical alerts goes through this SMTP server (none: e-mail deliveries wait and
    # are retried until one is configured). smtp_tls: starttls, tls (implicit, port 465) or none.
    smtp_host: str | None = None
    smtp_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "celltrail@localhost"
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0
    webhook_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=300)] = 5.0
    # Failed deliveries are retried after base, 2x base, 4x base ... (at most an hour apart).
    delivery_retry_base_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 30.0
    delivery_max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    # A critical alert nobody acknowledged (active, or latched after it cleared) is delivered again every
    # this many minutes.
    alert_reminder_minutes: Annotated[float, msgspec.Meta(gt=0, le=24 * 60)] = 15.0
    # A critical alert acknowledged while its condition still holds is delivered again every this many
    # minutes after the last acknowledgement, escalation or reminder: acknowledged is not resolved.
    alert_acknowledged_reminder_minutes: Annotated[float, msgspec.Meta(gt=0, le=7 * 24 * 60)] = 60.0
    # "No data" for this long is an alert; a logger silent for the maximum is taken as lost and its alert
    # closes by itself (receipt of the shipment resolves it earlier).
    logger_silent_minutes: Annotated[float, msgspec.Meta(gt=0, le=7 * 24 * 60)] = 15.0
    logger_silent_max_hours: Annotated[float, msgspec.Meta(gt=0, le=24 * 365)] = 72.0
    # An interval between two readings longer than this many of the logger's expected intervals is a
    # data gap: counted neither in nor out of range (issue 20).
    gap_factor: Annotated[float, msgspec.Meta(gt=1, le=1000)] = 3.0
    # A gap notice waits this long after the reading that ends the gap arrived: a backlog that lands in
    # shuffled pieces fills its holes meanwhile, and the notice is not raised only to be withdrawn.
    gap_settle_seconds: Annotated[float, msgspec.Meta(ge=0, le=24 * 3600)] = 60.0
    # A shipment not arrived this long after its planned arrival is late.
    shipment_late_minutes: Annotated[float, msgspec.Meta(ge=0, le=7 * 24 * 60)] = 30.0
    # Sign-in throttling: after this many failures for one username within the lockout window, that
    # username is locked for the window (429, even with the right password); one client address is
    # locked after login_max_failures_per_client failures across all usernames (password spraying).
    login_max_failures: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 5
    login_lockout_minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 15
    login_max_failures_per_client: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 20
    # Alert webhooks go to public addresses only (a target on the server's own network would let a
    # subscriber probe it). Comma-separated host names, addresses and CIDR networks allowed anyway, e.g.
    # "127.0.0.1, 10.20.0.0/16, hooks.internal" for a receiver on the local network.
    webhook_allow: str = ""
    # Reverse proxies allowed to name the client in X-Forwarded-For (comma-separated addresses or CIDR
    # networks, e.g. "10.0.0.0/8, ::1"). The client address (the per-client sign-in lock) is the TCP
    # peer's unless the peer is one of these. Empty: no proxy is trusted and X-Forwarded-For is ignored.
    trusted_proxies: str = ""
    # The record keyring (backend/domain/keyring.py): the custody chain's HMAC keys, never in the database.
    # Unset: <data dir>/record.key, created (0600) on the first start when it is missing. A configured
    # file that is missing or cannot be read stops the server at start.
    record_key_file: str | None = None
    # The patient keyring (backend/services/patient_keys.py): the AES-GCM keys patient identity is
    # encrypted with, never in the database. Unset: <data dir>/patient.key, created (0600) on the first
    # start when it is missing. A configured file that is missing or cannot be read stops the server.
    patient_key_file: str | None = None
    # Signed checkpoints of every chain head, written outside the database every this many minutes into an
    # append-only directory (unset: <data dir>/checkpoints), each also time-stamped by an RFC 3161
    # time-stamping authority when tsa_url is set.
    checkpoint_minutes: Annotated[float, msgspec.Meta(gt=0, le=7 * 24 * 60)] = 15.0
    checkpoint_dir: str | None = None
    tsa_url: str | None = None
    # Retention of readings (issue 26, docs/scaling.md): month partitions whose month ended more than this
    # many months ago are archived by `celltrail archive` to signed Parquet files in readings_archive_dir
    # (unset: <data dir>/archive) and dropped from the database. 0: never archive (the default; 24 is a
    # sensible value where an archive directory is backed up).
    readings_hot_months: Annotated[int, msgspec.Meta(ge=0, le=1200)] = 0
    readings_archive_dir: str | None = None

    def __post_init__(self) -> None:
        if self.db_pool_min > self.db_pool_max:
            raise SettingsError(
                f"{PREFIX}DB_POOL_MIN ({self.db_pool_min}) must not exceed {PREFIX}DB_POOL_MAX "
                f"({self.db_pool_max})"
            )
        for name, url in (
            ("DATABASE_URL", self.database_url),
            ("MIGRATION_DATABASE_URL", self.migration_database_url),
        ):
            if url is not None and not url.startswith(("postgresql://", "postgres://")):
                raise SettingsError(
                    f"{PREFIX}{name} must start with postgresql:// (got a value starting with "
                    f"{url.split(':', 1)[0]!r})"
                )
        if self.migration_database_url is not None and self.database_url is None:
            raise SettingsError(
                f"{PREFIX}MIGRATION_DATABASE_URL is set without {PREFIX}DATABASE_URL (the application's)"
            )
        if self.mqtt_url is not None and not self.mqtt_url.startswith(("mqtt://", "mqtts://")):
            raise SettingsError(f"{PREFIX}MQTT_URL must start with mqtt:// or mqtts://")
        if self.tsa_url is not None and not self.tsa_url.startswith(("http://", "https://")):
            raise SettingsError(f"{PREFIX}TSA_URL must start with http:// or https://")
        try:
            parse_allow_list(self.webhook_allow)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}WEBHOOK_ALLOW: {exc}") from None
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}TRUSTED_PROXIES: {exc}") from None

    @property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def owner_database_url(self) -> str | None:
        """The URL migrations, backup and restore use: the schema owner's when configured."""
        return self.migration_database_url or self.database_url

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def record_key_path(self) -> Path:
        return Path(self.record_key_file) if self.record_key_file else self.data_path / "record.key"

    @property
    def patient_key_path(self) -> Path:
        return Path(self.patient_key_file) if self.patient_key_file else self.data_path / "patient.key"

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir) if self.checkpoint_dir else self.data_path / "checkpoints"

    @property
    def readings_archive_path(self) -> Path:
        return Path(self.readings_archive_dir) if self.readings_archive_dir else self.data_path / "archive"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=16)
def parse_networks(spec: str) -> tuple[Network, ...]:
    """Parse "10.0.0.0/8, 192.168.1.7, ::1" into networks (an address alone is a network of one)."""
    networks = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network (e.g. 10.0.0.0/8)") from None
    return tuple(networks)


FIELDS = tuple(f.name for f in msgspec.structs.fields(Settings))


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from CELLTRAIL_* variables; unknown CELLTRAIL_* names are refused, not ignored,
    because a typo in production would otherwise silently fall back to a default."""
    source = os.environ if env is None else env
    raw: dict[str, object] = {}
    for key, value in source.items():
        if not key.startswith(PREFIX) or key.startswith(_FOREIGN_PREFIXES):
            continue
        name = key[len(PREFIX) :].lower()
        if name not in FIELDS:
            continue
        if value == "":
            continue
        raw[name] = value
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except SettingsError:
        raise
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(exc)) from None


# Other parts of Celltrail (bridge, scanner, tests) read their own CELLTRAIL_* variables.
_FOREIGN_PREFIXES = (
    f"{PREFIX}BRIDGE_",
    f"{PREFIX}SCANNER_",
    f"{PREFIX}TEST_",
    f"{PREFIX}SIM_",
)


def _explain(exc: msgspec.ValidationError) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.port`"; name the variable instead.
    message = str(exc)
    if " - at `$." in message:
        text, _, path = message.partition(" - at `$.")
        field = path.rstrip("`").split(".")[0].split("[")[0]
        return f"{PREFIX}{field.upper()}: {text}"
    return f"invalid settings: {message}"
