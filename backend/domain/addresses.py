"""Which network addresses Celltrail may send webhooks to. A subscription's target is typed by a site's
coordinator, and the delivery log shows what came of each attempt, so an unrestricted target would let
them make the server probe its own network (loopback admin ports, the cloud metadata service at
169.254.169.254, databases on the private network): server-side request forgery. Only public addresses
are allowed, unless an administrator names hosts or networks in CELLTRAIL_WEBHOOK_ALLOW."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowList:
    """Host names (exact, case-insensitive) and addresses or networks an administrator allowed."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        plain = _unmapped(address)
        return any(plain.version == net.version and plain in net for net in self.networks)


def parse_allow_list(text: str) -> AllowList:
    """`CELLTRAIL_WEBHOOK_ALLOW`: comma-separated host names, addresses and CIDR networks, e.g.
    `127.0.0.1, 10.20.0.0/16, hooks.internal`. Raises ValueError naming the first bad entry."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = entry.lower().rstrip(".")
        if "/" in name or ":" in name or not all(label and len(label) <= 63 for label in name.split(".")):
            raise ValueError(f"{entry!r} is neither a host name nor an IP address or CIDR network")
        hosts.add(name)
    return AllowList(frozenset(hosts), tuple(networks))


def _unmapped(address: IPAddress) -> IPAddress:
    # ::ffff:10.0.0.1 reaches 10.0.0.1: judge (and allow-list) it as the IPv4 address it is.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address: not loopback, private, shared (CGNAT), link-local, multicast,
    unspecified, documentation or otherwise reserved."""
    plain = _unmapped(address)
    return plain.is_global and not plain.is_multicast and not plain.is_reserved


def permitted(address: IPAddress, allow: AllowList) -> bool:
    return is_public(address) or allow.allows_address(address)


def literal_address(host: str) -> IPAddress | None:
    """The address when a URL's host is an IP literal (brackets already stripped by urlsplit)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
