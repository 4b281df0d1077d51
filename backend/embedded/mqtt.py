"""A private MQTT broker for `celltrail up` without CELLTRAIL_MQTT_URL, and for tests.

Mosquitto when the machine has it (the production broker, and the only one here that speaks MQTT 5, which
the bridge and the simulator use), else amqtt from the wheel. Either runs in its own process, so a slow
broker never stalls the API's event loop; amqtt's is `python -m backend.embedded.mqtt --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from backend.embedded.ports import free_port, port_open
from backend.private_files import open_private, private_directory, write_private

log = logging.getLogger(__name__)
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if Path(p).exists()), None)


class EmbeddedBroker:
    """A broker on 127.0.0.1 only, anonymous (nothing outside this machine can reach it), keeping QoS 1
    sessions in `directory`."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.binary = mosquitto_binary()
        self.kind = "mosquitto" if self.binary else "amqtt"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _mosquitto_config(self) -> Path:
        conf = self.directory / "mosquitto.conf"
        write_private(
            conf,
            (
                f"listener {self.port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence true\n"
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


def broker_config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 50_000}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def serve(host: str, port: int) -> None:
    from amqtt.broker import Broker

    broker = Broker(broker_config(host, port))
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
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
