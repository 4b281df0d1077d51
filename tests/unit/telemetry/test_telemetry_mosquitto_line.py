"""The Mosquitto password-file line: the `$7$` PBKDF2-SHA512 format mosquitto_passwd writes."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess

import pytest

from backend.services.loggers import mosquitto_password_line


def _verify(line: str, password: str) -> bool:
    _username, _, encoded = line.partition(":")
    _, version, iterations, salt, digest = encoded.split("$")
    assert version == "7"
    computed = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations))
    return base64.b64encode(computed).decode() == digest


def test_known_vector_from_mosquitto_passwd():
    # Written by `mosquitto_passwd -b file LGR-0001 secret123456` (Mosquitto 2.0.11).
    line = mosquitto_password_line("LGR-0001", "secret123456", salt=base64.b64decode("kCStLBsQxFCy3BhN"))
    assert line == (
        "LGR-0001:$7$101$kCStLBsQxFCy3BhN$uyogcNUUeKUlVd911YkyfFREu+i5N2PfCseG+wEG3H+/33eBKDH/5NpDYsgYcjXv"
        "dLmmSeOOm2afxhRGbuPSEw=="
    )


def test_each_line_has_a_fresh_salt_and_verifies():
    first = mosquitto_password_line("LGR-0002", "correct horse")
    second = mosquitto_password_line("LGR-0002", "correct horse")
    assert first != second
    assert _verify(first, "correct horse")
    assert not _verify(first, "wrong horse")


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs the mosquitto package")
def test_mosquitto_passwd_writes_the_same_format(tmp_path):
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "LGR-0003", "pw-0123456789"], check=True)
    line = path.read_text().strip()
    assert _verify(line, "pw-0123456789")
    assert line.split("$")[:3] == mosquitto_password_line("LGR-0003", "x").split("$")[:3]
