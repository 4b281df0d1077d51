"""The client's address, for the per-client sign-in lock.

The TCP peer's address, unless the peer is a reverse proxy listed in CELLTRAIL_TRUSTED_PROXIES: then the
client is the address that proxy (and any trusted proxy before it) recorded in X-Forwarded-For, read
from the right, where each proxy appends the address it saw. Anything left of that was written by the
client itself and is ignored, so a client cannot choose its own address. uvicorn's own proxy-header
handling is off (`celltrail serve`): it would trust 127.0.0.1 by default and rewrite the peer before we
see it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection

from backend.settings import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.7:443
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def resolve(peer: str | None, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str | None:
    """The client's address from the TCP peer and the X-Forwarded-For header values, in order."""
    if peer is None:
        return None
    peer_address = _address(peer)
    if not trusted or peer_address is None or not _trusted(peer_address, trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # Not an address where a trusted proxy should have written one: keep the last trustworthy
            # address rather than a string the client may have chosen.
            return client
        client = str(address)
        if not _trusted(address, trusted):
            return client
    return client


def client_address(connection: ASGIConnection[Any, Any, Any, Any], trusted: tuple[Network, ...]) -> str:
    peer = connection.client.host if connection.client else None
    forwarded = connection.headers.getall("x-forwarded-for", []) if trusted else []
    return resolve(peer, forwarded, trusted) or "unknown"
