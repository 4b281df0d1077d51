"""MQTT topic names of the Celltrail contract and a pure parser for incoming topics.

Contract (fixed, see ARCHITECTURE.md): loggers publish JSON telemetry on
``celltrail/v1/loggers/{logger_id}/telemetry`` and a retained status on
``celltrail/v1/loggers/{logger_id}/status``. Extensions defined here: the compact binary frame on
``celltrail/v1/loggers/{logger_id}/telemetry/bin`` (see FRAME.md) and the bridge's own retained
status on ``celltrail/v1/bridge/status``.
"""

from __future__ import annotations

import enum
import re
from typing import Final, NamedTuple

PREFIX: Final = "celltrail/v1/loggers"
BRIDGE_STATUS: Final = "celltrail/v1/bridge/status"

TELEMETRY_FILTER: Final = f"{PREFIX}/+/telemetry"
TELEMETRY_BIN_FILTER: Final = f"{PREFIX}/+/telemetry/bin"
STATUS_FILTER: Final = f"{PREFIX}/+/status"

LOGGER_ID_RE: Final = re.compile(r"LGR-[A-Z0-9]{4,12}")


class Kind(enum.Enum):
    TELEMETRY = "telemetry"
    TELEMETRY_BIN = "telemetry_bin"
    STATUS = "status"


class ParsedTopic(NamedTuple):
    kind: Kind
    # As written in the topic; may be malformed, which the caller reports as a dead letter.
    logger_id: str


_SUFFIXES: Final = (
    ("/telemetry/bin", Kind.TELEMETRY_BIN),
    ("/telemetry", Kind.TELEMETRY),
    ("/status", Kind.STATUS),
)


def telemetry_topic(logger_id: str) -> str:
    return f"{PREFIX}/{logger_id}/telemetry"


def telemetry_bin_topic(logger_id: str) -> str:
    return f"{PREFIX}/{logger_id}/telemetry/bin"


def status_topic(logger_id: str) -> str:
    return f"{PREFIX}/{logger_id}/status"


def subscription_filters(shared_group: str = "") -> list[str]:
    """Filters the bridge subscribes to. With a group, MQTT 5 shared subscriptions let several bridges
    split the traffic: the broker hands each message to one member of the group."""
    filters = [TELEMETRY_FILTER, TELEMETRY_BIN_FILTER, STATUS_FILTER]
    if shared_group:
        return [f"$share/{shared_group}/{f}" for f in filters]
    return filters


def parse_topic(topic: str) -> ParsedTopic | None:
    """Return the kind and logger id of a logger topic, or None if the topic is not one of ours."""
    if not topic.startswith(PREFIX + "/"):
        return None
    rest = topic[len(PREFIX) + 1 :]
    for suffix, kind in _SUFFIXES:
        if rest.endswith(suffix):
            logger_id = rest[: -len(suffix)]
            if logger_id and "/" not in logger_id:
                return ParsedTopic(kind, logger_id)
            return None
    return None


def is_valid_logger_id(logger_id: str) -> bool:
    return LOGGER_ID_RE.fullmatch(logger_id) is not None
