"""A private MQTT broker for `celltrail up` without CELLTRAIL_MQTT_URL, and for tests.

Mosquitto when the machine has it (the production broker, and the only one here that speaks MQTT 5, which
the bridge and the simulator use), else amqtt from the wheel. Either runs in its own process, so a slow
broker never stalls the API's event loop; amqtt's is `python -m backend.embedded.mqtt --port N`.

Like production (deploy/mosquitto) it admits no anonymous client: the bridge, the health probe and each
logger sign in with a generated password kept in `<directory>/credentials` (mode 0600; the loggers' alone
also in `logger-credentials`, which the simulator reads), and the per-logger ACL applies: a logger may
publish only its own telemetry and status, and read nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.embedded.ports import free_port, port_open
from backend.private_files import open_private, private_directory, write_private

log = logging.getLogger(__name__)
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
BRIDGE_USER = "bridge"
HEALTH_USER = "healthcheck"
# User names (logger ids and our own accounts): nothing that could break a password or ACL file line.
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# deploy/mosquitto/acl, the production ACL (tests/unit/test_compose.py checks they are the same text).
ACL = """# Celltrail MQTT access control.
# Each logger signs in with its logger id as user name (e.g. LGR-0001) and may publish only under its
# own topic: a stolen logger credential cannot forge another container's temperatures.
pattern write celltrail/v1/loggers/%u/telemetry
pattern write celltrail/v1/loggers/%u/telemetry/bin
pattern write celltrail/v1/loggers/%u/status

# The firmware bridge reads every logger and announces its own state.
user bridge
topic read celltrail/v1/loggers/+/telemetry
topic read celltrail/v1/loggers/+/telemetry/bin
topic read celltrail/v1/loggers/+/status
topic readwrite celltrail/v1/bridge/status

# Health checks (container healthcheck and the backend's /healthz probe).
user healthcheck
topic write celltrail/v1/health
"""


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if Path(p).exists()), None)


def read_credentials(path: Path) -> dict[str, str]:
    """user -> password from a `user:password` per line file (empty when there is none)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))


def _write_credentials(path: Path, credentials: dict[str, str]) -> None:
    write_private(path, "".join(f"{user}:{secret}\n" for user, secret in credentials.items()).encode())


class EmbeddedBroker:
    """A broker on 127.0.0.1 only keeping QoS 1 sessions in `directory`. Authenticated with the
    production ACL unless `anonymous` (the test suite's shared broker, where tests play any logger)."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        *,
        anonymous: bool = False,
        loggers: Iterable[str] = (),
        mosquitto: bool = True,
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.anonymous = anonymous
        self.loggers = list(loggers)
        self.binary = mosquitto_binary() if mosquitto else None
        self.passwd_tool = shutil.which("mosquitto_passwd")
        if self.binary and not anonymous and self.passwd_tool is None:
            log.warning(
                "mosquitto_passwd is missing (package mosquitto); using amqtt for the embedded broker"
            )
            self.binary = None
        self.kind = "mosquitto" if self.binary else "amqtt"
        self.process: subprocess.Popen[bytes] | None = None
        self.credentials_file = directory / "credentials"
        self.logger_credentials_file = directory / "logger-credentials"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def credentials(self) -> dict[str, str]:
        return read_credentials(self.credentials_file)

    def password(self, user: str) -> str:
        return self.credentials()[user]

    def _ensure_credentials(self) -> dict[str, str]:
        """A password for the bridge, the health probe and each logger: generated once, kept."""
        known = self.credentials()
        for user in (BRIDGE_USER, HEALTH_USER, *self.loggers):
            if not _USER.fullmatch(user):
                raise ValueError(f"{user!r} cannot be an MQTT user name")
            known.setdefault(user, secrets.token_urlsafe(24))
        _write_credentials(self.credentials_file, known)
        loggers = {user: known[user] for user in self.loggers}
        _write_credentials(self.logger_credentials_file, loggers)
        return known

    def _mosquitto_config(self) -> Path:
        conf = self.directory / "mosquitto.conf"
        access = "allow_anonymous true\n"
        if not self.anonymous:
            passwd = self.directory / "passwd"
            # Plain `user:password` lines, hashed in place by mosquitto_passwd -U: no password is ever an
            # argument (the process list).
            _write_credentials(passwd, self._ensure_credentials())
            assert self.passwd_tool is not None
            subprocess.run([self.passwd_tool, "-U", str(passwd)], check=True, capture_output=True)
            passwd.chmod(0o600)  # mosquitto_passwd writes a new file with the process's umask
            acl = self.directory / "acl"
            write_private(acl, ACL.encode())
            access = f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
        write_private(
            conf,
            (
                "per_listener_settings false\n"
                f"listener {self.port} 127.0.0.1\n" + access + "persistence true\n"
                f"persistence_location {self.directory}/\n"
                # Without TCP_NODELAY QoS 1 traffic waits on the delayed-ACK timer (see ARCHITECTURE.md).
                "set_tcp_nodelay true\n"
                "max_queued_messages 0\n" + ("user root\n" if os.geteuid() == 0 else "")
                # As root, Mosquitto would drop to the `mosquitto` user, who cannot write our directory.
            ).encode(),
        )
        return conf

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        # The directory holds the broker's persisted sessions (queued readings) and its log: ours only.
        private_directory(self.directory)
        output = open_private(self.directory / "broker.log", "ab")
        if self.binary:
            args = [self.binary, "-c", str(self._mosquitto_config())]
        else:
            log.warning("Mosquitto is not installed; using amqtt, which speaks MQTT 3.1.1 only")
            args = [sys.executable, "-m", "backend.embedded.mqtt", "--port", str(self.port)]
            if not self.anonymous:
                self._ensure_credentials()
                args += ["--credentials", str(self.credentials_file)]
        self.process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} did not start; see {self.directory / 'broker.log'}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- amqtt: the same rules as plugins, for machines without Mosquitto ----------------------------------


@dataclass(frozen=True)
class AclRule:
    user: str | None  # None: a pattern, for every user (%u is the user's name)
    access: str  # read, write or readwrite
    topic: str


def parse_acl(text: str) -> list[AclRule]:
    rules: list[AclRule] = []
    user: str | None = None
    for raw in text.splitlines():
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            user = words[1]
        elif words[0] == "topic":
            rules.append(AclRule(user or "", *(words[1:3] if len(words) == 3 else ["readwrite", words[1]])))
        elif words[0] == "pattern":
            rules.append(AclRule(None, *(words[1:3] if len(words) == 3 else ["readwrite", words[1]])))
    return rules


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT filter matching (`+` one level, `#` the rest); a subscription's own wildcards must be the
    rule's."""
    wanted, given = pattern.split("/"), topic.split("/")
    for index, part in enumerate(wanted):
        if part == "#":
            return True
        if index >= len(given) or (part != "+" and part != given[index]):
            return False
    return len(given) == len(wanted)


def acl_allows(rules: list[AclRule], user: str | None, topic: str, action: str) -> bool:
    """`action`: read (subscribe, receive) or write (publish). No user, no access."""
    if not user:
        return False
    for rule in rules:
        if action not in rule.access:
            continue
        if rule.user is None and topic_matches(rule.topic.replace("%u", user), topic):
            return True
        if rule.user == user and topic_matches(rule.topic, topic):
            return True
    return False


def _amqtt_plugins() -> tuple[type, type]:
    from amqtt.contexts import Action
    from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin

    class CredentialsAuth(BaseAuthPlugin):  # type: ignore[misc]
        """Only users of the credentials file, with their password."""

        @dataclass
        class Config:
            credentials_file: str = ""

        async def authenticate(self, *, session: Any) -> bool | None:
            known = read_credentials(Path(self.config.credentials_file))
            expected = known.get(session.username or "")
            given = session.password or ""
            given = given.decode() if isinstance(given, bytes) else given
            return expected is not None and hmac.compare_digest(expected.encode(), given.encode())

    class LoggerAcl(BaseTopicPlugin):  # type: ignore[misc]
        """deploy/mosquitto/acl, applied by amqtt."""

        @dataclass
        class Config:
            pass

        rules = parse_acl(ACL)

        async def topic_filtering(
            self, *, session: Any = None, topic: str | None = None, action: Any = None
        ) -> bool | None:
            wanted = "write" if action == Action.PUBLISH else "read"
            return acl_allows(self.rules, getattr(session, "username", None), topic or "", wanted)

    return CredentialsAuth, LoggerAcl


def broker_config(host: str, port: int, credentials: Path | None = None) -> dict[str, Any]:
    listeners = {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 50_000}}
    if credentials is None:
        return {
            "listeners": listeners,
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
    return {
        "listeners": listeners,
        "plugins": {
            "backend.embedded.mqtt.CredentialsAuth": {"credentials_file": str(credentials)},
            "backend.embedded.mqtt.LoggerAcl": {},
        },
    }


def __getattr__(name: str) -> Any:
    # amqtt loads plugins by dotted name; they are built on first use, so importing this module (as
    # `celltrail up` does) needs no amqtt.
    if name in ("CredentialsAuth", "LoggerAcl"):
        auth, acl = _amqtt_plugins()
        globals().update(CredentialsAuth=auth, LoggerAcl=acl)
        return globals()[name]
    raise AttributeError(name)


async def serve(host: str, port: int, credentials: Path | None = None) -> None:
    from amqtt.broker import Broker

    broker = Broker(broker_config(host, port, credentials))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description="Embedded MQTT broker for Celltrail development")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--credentials", type=Path, help="user:password file; without it, anonymous")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.host, args.port, args.credentials))


if __name__ == "__main__":
    main()
