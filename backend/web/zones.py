"""The time zone each page shows its times in: a site's own zone (sites carry an IANA name). Read from
the site directory and kept for a minute, so a page does not ask the database for it on every render."""

from __future__ import annotations

import time
from typing import Final

from backend.db.types import Pool
from backend.services import accounts

KEEP_SECONDS: Final = 60.0
DEFAULT_ZONE: Final = "UTC"

_cache: dict[str, str] = {}
_loaded_at = 0.0


async def site_zones(pool: Pool) -> dict[str, str]:
    """Site code -> IANA zone, for every site."""
    global _loaded_at
    if not _cache or time.monotonic() - _loaded_at > KEEP_SECONDS:
        fresh = {site.code: site.time_zone for site in await accounts.list_sites(pool)}
        _cache.clear()
        _cache.update(fresh)
        _loaded_at = time.monotonic()
    return dict(_cache)


def zone_for(zones: dict[str, str], *sites: str | None) -> str:
    """The zone of the first named site that has one; a person's page without a site of its own uses the
    zone of their first site (sorted), and UTC when they have none."""
    for site in sites:
        if site and site in zones:
            return zones[site]
    return DEFAULT_ZONE
