"""Send rendered labels somewhere: a file, a printer's raw TCP port (9100), or a CUPS queue."""

import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Final

from labels.stock import Stock

RAW_PORT: Final = 9100
DEFAULT_TIMEOUT_S: Final = 10.0


class PrinterError(OSError):
    """The label could not be delivered to the printer."""


def write_file(path: str, data: bytes) -> None:
    """Write ``data`` to ``path``; ``-`` means standard output."""
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    Path(path).write_bytes(data)


def parse_host_port(target: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[IPv6]:PORT``; the port defaults to 9100."""
    host, port = target, RAW_PORT
    if target.startswith("["):
        end = target.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in printer address {target!r}")
        host, rest = target[1:end], target[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"expected ':PORT' after ']' in printer address {target!r}")
            port = _port(rest[1:], target)
    elif target.count(":") == 1:
        host, port_text = target.split(":")
        port = _port(port_text, target)
    if not host:
        raise ValueError(f"printer address {target!r} has no host")
    return host, port


def _port(text: str, target: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"printer port must be 1-65535 in {target!r}")
    return int(text)


def send_raw(target: str, data: bytes, timeout: float = DEFAULT_TIMEOUT_S) -> None:
    """Send ``data`` unchanged to a printer's raw port (JetDirect / AppSocket), e.g. ``zebra1:9100``."""
    host, port = parse_host_port(target)
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(data)
            # Half-close so the printer sees the end of the job before the socket goes away.
            connection.shutdown(socket.SHUT_WR)
    except OSError as error:
        raise PrinterError(f"could not send label to {host}:{port}: {error}") from error


def cups_command(queue: str, fmt: str, stock: Stock | None) -> list[str]:
    """The ``lp`` command line for a label in ``fmt`` (ZPL is passed through raw)."""
    lp = shutil.which("lp")
    if lp is None:
        raise PrinterError("the CUPS client 'lp' is not installed")
    command = [lp, "-d", queue]
    if fmt == "zpl":
        command += ["-o", "raw"]
    elif stock is not None:
        command += ["-o", f"media=Custom.{stock.width_mm:g}x{stock.height_mm:g}mm"]
    return command


def send_cups(queue: str, data: bytes, fmt: str, stock: Stock | None = None) -> None:
    """Queue ``data`` on the CUPS printer ``queue``."""
    if not queue or queue.startswith("-"):
        raise ValueError(f"not a CUPS queue name: {queue!r}")
    command = cups_command(queue, fmt, stock)
    # The command is a fixed list (no shell); the queue name cannot be read as an option.
    result = subprocess.run(command, input=data, capture_output=True, check=False, timeout=60)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise PrinterError(f"lp -d {queue} failed ({result.returncode}): {message}")
