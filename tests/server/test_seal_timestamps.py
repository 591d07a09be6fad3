"""RFC 3161 timestamps of the daily seals (server/tsa.py) against a local timestamp authority built
here: a CA, a TSA certificate (timeStamping, critical) and `openssl ts -reply` behind HTTP. The
stored token is checked with `openssl ts -verify`, as docs/evidence.md tells a third party to."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select

from server import evidence, seals, tsa
from server.firmtime import zone
from server.packcheck import verify_pack
from server.packexport import alert_pack
from server.schema import seals as seals_table
from server.signing import load_or_create
from tests.server.factories import make_egress

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl (Debian package openssl) is not installed")
FIRM = zone("Asia/Shanghai")


def _cert(subject: str, key, issuer_name, issuer_key, ca: bool):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def authority(tmp_path):
    """A local RFC 3161 authority; yields (url, CA file, TSA certificate file, count of requests)."""
    folder = tmp_path / "tsa"
    folder.mkdir()
    ca_key, tsa_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA CA")])
    ca = _cert("Test TSA CA", ca_key, ca_name, ca_key, ca=True)
    cert = _cert("Test TSA", tsa_key, ca_name, ca_key, ca=False)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "tsa.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = tsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (folder / "tsa.key").write_bytes(pem)
    (folder / "serial").write_text("01\n")
    (folder / "tsa.cnf").write_text(
        "[ tsa ]\ndefault_tsa = local\n[ local ]\n"
        f"dir = {folder}\nserial = $dir/serial\ncrypto_device = builtin\nsigner_cert = $dir/tsa.pem\n"
        "certs = $dir/tsa.pem\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\n"
        "digests = sha256\naccuracy = secs:1\nordering = yes\ntsa_name = no\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n"
    )
    requests: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            query = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(query)
            (folder / "q.tsq").write_bytes(query)
            subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(folder / "tsa.cnf"), "-queryfile", str(folder / "q.tsq"), "-out", str(folder / "r.tsr")],
                check=True, capture_output=True, timeout=30,
            )
            reply = (folder / "r.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", tsa.REPLY_TYPE)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/tsr", folder / "ca.pem", folder / "tsa.pem", requests
    finally:
        server.shutdown()
        thread.join(10)


def test_each_seal_is_timestamped_once_and_the_token_verifies_with_openssl(client, send, store, clock, tmp_path, authority):
    url, ca, tsa_cert, requests = authority
    key = load_or_create(str(tmp_path / "k" / "signing-key.pem"))
    send(make_egress("core", seq=1, prev_hash=None))
    _, end = seals.day_bounds(clock().astimezone(FIRM).date(), FIRM)
    clock.now = end + dt.timedelta(seconds=seals.GRACE_S + 1)

    seals.seal_pending(store.engine, key, FIRM, clock(), url)
    assert seals.stamp_missing(store.engine, url) == 0 and len(requests) == 1  # once

    with store.engine.connect() as conn:
        row = conn.execute(select(seals_table)).mappings().one()
    token = base64.b64decode(row["tsa_token"])
    (tmp_path / "seal.json").write_bytes(row["body"].encode("utf-8"))
    (tmp_path / "seal.tsr").write_bytes(token)
    verify = ["openssl", "ts", "-verify", "-data", str(tmp_path / "seal.json"), "-in", str(tmp_path / "seal.tsr"), "-token_in", "-CAfile", str(ca), "-untrusted", str(tsa_cert)]
    done = subprocess.run(verify, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stdout + done.stderr
    (tmp_path / "seal.json").write_bytes(row["body"].replace('"count":1', '"count":2').encode("utf-8"))
    assert subprocess.run(verify, capture_output=True, timeout=30).returncode != 0

    # the pack carries it beside the seal, and a token of something else is refused
    assert verify_pack(alert_pack(store, 1, key, FIRM, "test").data, key.public_pem.encode()).ok
    alert = store.get_alert(1)
    stored = {e["id"]: e for e in alert.pop("events")}
    with store.engine.connect() as conn:
        found, proofs = seals.for_events(conn, list(stored), FIRM)
    (name,) = found
    assert base64.b64decode(found[name]["tsa_token"]) == token
    found[name] = {**found[name], "tsa_token": base64.b64encode(b"0" * 200).decode()}
    forged = evidence.build(alert, list(stored.values()), stored, found, proofs, key, "now", "test")
    verdict = verify_pack(forged.data, key.public_pem.encode())
    assert not verdict.ok and f"{name}.tsr is not a timestamp of this seal" in verdict.problems


def test_an_authority_that_refuses_or_is_down_leaves_the_seal_unstamped(client, send, store, clock, tmp_path):
    key = load_or_create(str(tmp_path / "k" / "signing-key.pem"))
    send(make_egress("core", seq=1, prev_hash=None))
    _, end = seals.day_bounds(clock().astimezone(FIRM).date(), FIRM)
    clock.now = end + dt.timedelta(seconds=seals.GRACE_S + 1)
    runs = seals.seal_pending(store.engine, key, FIRM, clock(), "http://127.0.0.1:9/tsr")  # nothing listens on port 9
    assert [r.sealed for r in runs] == [True]
    with store.engine.connect() as conn:
        assert conn.execute(select(seals_table.c.tsa_token)).scalar() is None
    with pytest.raises(tsa.TsaError, match="refused"):
        tsa.parse_reply(bytes.fromhex("3005300302010" + "2"), hashlib.sha256(b"x").digest(), 1)
