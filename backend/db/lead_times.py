"""A product's lead times as the catalogue stores them (hours between milestones, manufacturing days,
slack). The repository reads them (backend/db/repo/planning.py); the plan's milestones are computed from
them in backend/services/planning/milestones.py."""

from __future__ import annotations

import msgspec


class LeadTimes(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    ship_after_collection_h: int
    transit_in_h: int
    start_after_arrival_h: int
    manufacturing_days: int
    ship_after_release_h: int
    transit_out_h: int
    infusion_after_receipt_h: int
    slack_h: int
