"""Where a webhook may go (backend.domain.addresses says which addresses), checked twice: when a
subscription is made, for a clear refusal, and again at every delivery, because a name that resolved to a
public address yesterday may resolve to 127.0.0.1 today (DNS rebinding). The delivery then connects to
the very address it checked, not to whatever a second lookup would answer."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

from backend.domain.addresses import AllowList, IPAddress, literal_address, parse_allow_list, permitted
from backend.domain.errors import InvalidInput
from backend.settings import PREFIX, Settings

SCHEMES: Final = ("http", "https")
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Long enough for a slow resolver, short enough that creating a subscription never hangs on one.
SUBSCRIBE_LOOKUP_SECONDS: Final = 3.0
NOT_PUBLIC: Final = (
    "the webhook target's address is not public (loopback, private, link-local, multicast or reserved); "
    f"an administrator can allow it with {PREFIX}WEBHOOK_ALLOW"
)


class Refused(Exception):
    """A delivery must not be sent to this target; the message says why (no address, no response)."""


@dataclass(frozen=True)
class Pinned:
    """A request that goes to the checked address: the URL names the address, Host and TLS still the name."""

    url: str
    host_header: str
    sni_hostname: str


def allow_list(settings: Settings) -> AllowList:
    return parse_allow_list(settings.webhook_allow)


def _shape(target: str) -> tuple[SplitResult, str, int]:
    url = urlsplit(target)
    host = url.hostname
    if url.scheme not in SCHEMES or not host:
        raise InvalidInput("a webhook target is an http:// or https:// URL", field_errors={"target": "url"})
    try:
        port = url.port or DEFAULT_PORTS[url.scheme]
    except ValueError:
        raise InvalidInput(
            "the webhook target's port is not a number", field_errors={"target": "url"}
        ) from None
    return url, host, port


async def _addresses(host: str, port: int) -> list[IPAddress]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = literal_address(str(sockaddr[0]).split("%", 1)[0])  # fe80::1%eth0: drop the zone
        if address is not None and address not in found:
            found.append(address)
    return found


async def check_subscription_target(target: str, allow: AllowList) -> None:
    """At subscription time: an http(s) URL whose host is allowed or resolves to public addresses only.
    A name that does not resolve now is accepted (it may by the time an alert fires); every delivery
    checks again."""
    _, host, port = _shape(target)
    if allow.allows_host(host):
        return
    try:
        addresses = await asyncio.wait_for(_addresses(host, port), SUBSCRIBE_LOOKUP_SECONDS)
    except (OSError, TimeoutError, UnicodeError):
        return
    if any(not permitted(address, allow) for address in addresses):
        raise InvalidInput(NOT_PUBLIC, field_errors={"target": "not a public address"})


async def pin(target: str, allow: AllowList, timeout: float) -> Pinned:
    """At delivery time: resolve once, refuse when any address is not allowed, and aim the request at
    the first address so that nothing resolves the name again between the check and the connection."""
    try:
        url, host, port = _shape(target)
    except InvalidInput as exc:
        raise Refused(exc.detail) from None
    try:
        addresses = await asyncio.wait_for(_addresses(host, port), timeout)
    except (OSError, TimeoutError, UnicodeError):
        raise Refused("the webhook target's host name does not resolve") from None
    if not addresses:
        raise Refused("the webhook target's host name does not resolve")
    if not allow.allows_host(host) and any(not permitted(address, allow) for address in addresses):
        raise Refused(NOT_PUBLIC)
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if url.port is None else f"{literal}:{url.port}"
    userinfo, _, host_header = url.netloc.rpartition("@")  # Host: the name (and port) as written
    if userinfo:
        netloc = f"{userinfo}@{netloc}"  # a receiver's basic-auth credentials stay in the URL
    return Pinned(
        url=urlunsplit((url.scheme, netloc, url.path or "/", url.query, "")),
        host_header=host_header,
        sni_hostname=host,
    )
