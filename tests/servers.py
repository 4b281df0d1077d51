"""Private servers for tests: a PostgreSQL cluster and an MQTT broker on free ports, in temp dirs.

Tests that stop or break a server start their own with these; everything else shares the session ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from backend.embedded.ports import free_port, port_open
from backend.embedded.postgres import EmbeddedPostgres


def start_postgres(directory: Path) -> EmbeddedPostgres:
    cluster = EmbeddedPostgres(directory / "pgdata", fast_unsafe=True)
    cluster.start()
    return cluster


class Broker:
    """Mosquitto when the machine has it (the production broker), else the embedded amqtt."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.kind = (
            "mosquitto" if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists() else "amqtt"
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Broker:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "broker.log").open("ab")
        if self.kind == "mosquitto":
            binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
            conf = self.directory / "mosquitto.conf"
            conf.write_text(
                f"listener {self.port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence true\n"
                f"persistence_location {self.directory}/\n"
                "set_tcp_nodelay true\n"
                "max_queued_messages 0\n" + ("user root\n" if os.geteuid() == 0 else "")
                # As root, Mosquitto would drop to `mosquitto`, who cannot write pytest's 0700 folders.
            )
            args = [binary, "-c", str(conf)]
        else:
            args = [sys.executable, "-m", "backend.embedded.mqtt", "--port", str(self.port)]
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
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


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883
