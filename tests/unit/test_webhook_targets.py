"""Where webhooks may go: public addresses only unless allow-listed, checked on the resolved addresses at
delivery (a name may resolve elsewhere than when the subscription was made) and sent to the address that
was checked."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from backend.domain.addresses import AllowList, is_public, parse_allow_list, permitted
from backend.domain.errors import InvalidInput
from backend.services import webhook_targets
from backend.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "64:ff9b::7f00:1",
        "2001:db8::1",
    ],
)
def test_addresses_that_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_the_allow_list_takes_hosts_addresses_and_networks() -> None:
    allow = parse_allow_list(" 127.0.0.1, 10.20.0.0/16 ,hooks.Internal., ::1,,")
    assert allow.allows_host("HOOKS.internal")
    assert not allow.allows_host("evil.internal")
    assert permitted(ipaddress.ip_address("10.20.3.4"), allow)
    assert permitted(ipaddress.ip_address("::ffff:127.0.0.1"), allow)  # the same loopback, mapped
    assert permitted(ipaddress.ip_address("::1"), allow)
    assert not permitted(ipaddress.ip_address("10.21.0.1"), allow)
    assert not permitted(ipaddress.ip_address("169.254.169.254"), allow)
    for bad in ("http://x", "10.0.0.0/33x", "a/b"):
        with pytest.raises(ValueError, match="neither"):
            parse_allow_list(bad)


def test_a_bad_allow_list_setting_is_a_settings_error() -> None:
    assert load_settings({"CELLTRAIL_WEBHOOK_ALLOW": "127.0.0.1,hooks.local"}).webhook_allow
    with pytest.raises(SettingsError, match="CELLTRAIL_WEBHOOK_ALLOW"):
        load_settings({"CELLTRAIL_WEBHOOK_ALLOW": "https://hooks.local/x"})


def _resolving(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    async def getaddrinfo(self: Any, host: str, port: int, **_: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr("asyncio.base_events.BaseEventLoop.getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    "target",
    [
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
        "http:///no-host",
        "http://127.0.0.1:8000/admin",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://rebind.example.com/hook",  # resolves to loopback now
        "http://mixed.example.com/hook",  # one public and one private address
    ],
)
async def test_subscription_targets_are_refused(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    _resolving(
        monkeypatch, {"rebind.example.com": ["127.0.0.1"], "mixed.example.com": ["93.184.216.34", "10.0.0.1"]}
    )
    with pytest.raises(InvalidInput):
        await webhook_targets.check_subscription_target(target, AllowList())


async def test_subscription_targets_that_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving(monkeypatch, {"hooks.example.com": ["93.184.216.34"], "hooks.internal": ["10.0.0.7"]})
    allow = parse_allow_list("127.0.0.1, hooks.internal")
    for target in (
        "https://hooks.example.com/celltrail",
        "http://127.0.0.1:9999/hook",
        "http://hooks.internal/hook",
        "https://not-resolvable-now.example/hook",  # checked again at each delivery
    ):
        await webhook_targets.check_subscription_target(target, allow)


async def test_a_delivery_is_refused_when_the_name_now_resolves_to_a_private_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving(monkeypatch, {"hooks.example.com": ["169.254.169.254"]})
    with pytest.raises(webhook_targets.Refused, match="not public"):
        await webhook_targets.pin("https://hooks.example.com/x", AllowList(), 1.0)
    with pytest.raises(webhook_targets.Refused, match="does not resolve"):
        await webhook_targets.pin("https://gone.example.com/x", AllowList(), 1.0)


async def test_a_delivery_goes_to_the_address_that_was_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving(monkeypatch, {"hooks.example.com": ["93.184.216.34"], "v6.example.com": ["2606:4700::1"]})
    pinned = await webhook_targets.pin("https://user:pw@hooks.example.com:8443/a?b=1", AllowList(), 1.0)
    assert pinned.url == "https://user:pw@93.184.216.34:8443/a?b=1"
    assert pinned.host_header == "hooks.example.com:8443"
    assert pinned.sni_hostname == "hooks.example.com"  # TLS still verifies the name's certificate
    pinned = await webhook_targets.pin("http://v6.example.com", AllowList(), 1.0)
    assert (pinned.url, pinned.host_header) == ("http://[2606:4700::1]/", "v6.example.com")
