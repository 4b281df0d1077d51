"""RFC 3161 time-stamps of checkpoints against a local time-stamping authority: OpenSSL's `ts -reply`
behind a tiny HTTP server on the loopback interface, with a throwaway CA and TSA certificate made in a
temporary directory. The token Celltrail keeps beside the checkpoint verifies with `openssl ts -verify`
against that CA, over exactly the checkpoint file's bytes."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.db.pool import create_pool
from backend.services import checkpoints, record_keys

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

TSA_CONFIG = """
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = Celltrail test
[ tsa_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
signer_cert = $dir/tsa.crt
signer_key = $dir/tsa.key
certs = $dir/ca.crt
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_authority(folder: Path) -> Path:
    config = folder / "tsa.cnf"
    config.write_text(TSA_CONFIG.format(dir=folder))
    (folder / "serial").write_text("01\n")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=Celltrail test CA", cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
        "-subj", "/CN=Celltrail test TSA", cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "tsa.crt", "-days", "2", "-extfile", str(config), "-extensions", "tsa_ext", cwd=folder,
    )  # fmt: skip
    return config


@pytest.fixture
def authority(server_dir: Path) -> Iterator[tuple[str, Path]]:
    """(URL, folder) of a time-stamping authority on 127.0.0.1; requests it answered are counted."""
    folder = server_dir / "tsa"
    folder.mkdir()
    config = _make_authority(folder)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                (folder / "request.tsq").write_bytes(query)
                _openssl(
                    "ts", "-reply", "-config", str(config), "-queryfile", "request.tsq",
                    "-out", "reply.tsr", cwd=folder,
                )  # fmt: skip
                reply = (folder / "reply.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa", folder
    finally:
        server.shutdown()
        server.server_close()


def _verify_token(data: Path, token: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "openssl", "ts", "-verify", "-data", str(data), "-in", str(token),
            "-CAfile", str(folder / "ca.crt"), "-untrusted", str(folder / "tsa.crt"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


async def test_a_checkpoint_is_time_stamped_by_the_authority(database_url, settings, authority):
    url, folder = authority
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        written = await checkpoints.write(pool, record_keys.current(), settings.checkpoint_path, url)
    finally:
        await pool.close()
    assert written.timestamp_path is not None
    assert os.stat(written.timestamp_path).st_mode & 0o777 == 0o600
    # Anyone holding the authority's CA certificate can check the token against the checkpoint file.
    verified = _verify_token(Path(written.path), Path(written.timestamp_path), folder)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Verification: OK" in verified.stdout


async def test_a_reply_for_other_data_is_refused(authority):
    url, _folder = authority
    digest = bytes(32)
    reply = await checkpoints.fetch_timestamp(url, digest)
    with pytest.raises(checkpoints.CheckpointError, match="other data"):
        checkpoints.check_timestamp_reply(reply, bytes([1]) * 32, 7)


async def test_an_unreachable_authority_is_a_checkpoint_error():
    with pytest.raises(checkpoints.CheckpointError, match="cannot be reached"):
        await checkpoints.fetch_timestamp("http://127.0.0.1:9/tsa", bytes(32))
