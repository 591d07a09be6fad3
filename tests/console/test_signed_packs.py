"""Signed evidence packs (server/evidence.py, server/packcheck.py): exported from the console, checked
with `sha256sum -c`, `miwei-server verify-pack` and the snippet in docs/evidence.md; every edit,
re-hash, other key, added or removed file refused with the reason."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server import seals
from server.cli import main as server_main
from server.firmtime import zone
from server.packcheck import verify_pack
from server.signing import public_pem
from tests.server.factories import make_egress

ROOT = Path(__file__).parent.parent.parent
SNIPPET = re.compile(r"<!-- verify-snippet -->\n```python\n(.*?)^```", re.S | re.M)


@pytest.fixture
def exported(admin, send, store):
    """A pack as the console serves it, and the collector's public key (PEM)."""
    send(make_egress("core", match={"method": "exact", "similarity": 1.0}))
    answer = admin.get("/console/alerts/1/evidence.zip")
    assert answer.status_code == 200
    key = admin.app.state.signer.key()
    return answer.content, key.public_pem.encode("ascii")


def _rewrite(data: bytes, change) -> bytes:
    """The pack with change(files) applied (files: name -> bytes, in order)."""
    with zipfile.ZipFile(io.BytesIO(data)) as pack:
        files = {n: pack.read(n) for n in pack.namelist()}
    change(files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as pack:
        for name, body in files.items():
            pack.writestr(name, body)
    return out.getvalue()


def _event_name(data: bytes) -> str:
    return next(n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if n.startswith("events/"))


def _rehash(files: dict) -> None:
    manifest = json.loads(files["manifest.json"])
    for entry in manifest["files"]:
        entry["sha256"] = hashlib.sha256(files[entry["name"]]).hexdigest()
    files["manifest.json"] = json.dumps(manifest).encode()
    files["SHA256SUMS"] = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in files.items() if n != "SHA256SUMS").encode()


def test_the_signing_key_is_made_once_private_and_shown(admin, exported, store):
    key = admin.app.state.signer.key()
    assert stat.S_IMODE(os.stat(key.path).st_mode) == 0o600
    page = admin.get("/console/alerts/1").text
    assert key.fingerprint in page and "/console/signing-key.pem" in page
    assert admin.get("/console/signing-key.pem").text == key.public_pem
    data, _ = exported
    audit = store.list_audit(action="export.evidence").items[0]
    assert audit["details"]["sha256"] == hashlib.sha256(data).hexdigest() and audit["details"]["key"] == key.fingerprint


def test_a_valid_pack_passes_sha256sum_and_verify_pack(exported, tmp_path, capsys):
    data, public = exported
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum (coreutils) is not installed")
    folder = tmp_path / "pack"
    zipfile.ZipFile(io.BytesIO(data)).extractall(folder)
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "manifest.sig: OK" in done.stdout, done.stdout + done.stderr
    (folder / _event_name(data)).write_bytes(b"{}")
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, timeout=30).returncode == 1

    (tmp_path / "pack.zip").write_bytes(data)
    (tmp_path / "key.pem").write_bytes(public)
    assert server_main(["verify-pack", str(tmp_path / "pack.zip"), "--public-key", str(tmp_path / "key.pem")]) == 0
    assert ": valid," in capsys.readouterr().out


def _other_key_signs(files: dict) -> None:
    other = Ed25519PrivateKey.generate()
    files["public_key.pem"] = public_pem(other.public_key()).encode()
    manifest = json.loads(files["manifest.json"])
    manifest["public_key_sha256"] = "0" * 64
    files["manifest.json"] = json.dumps(manifest).encode()
    files["manifest.sig"] = base64.b64encode(other.sign(files["manifest.json"]))


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda f, e: f.__setitem__(e, f[e].replace(b"zhang.wei", b"li.lei")), "{event} was changed"),
        (lambda f, e: f.__setitem__("alert.json", f["alert.json"] + b" "), "alert.json was changed"),
        (lambda f, e: (f.__setitem__(e, f[e].replace(b"zhang.wei", b"li.lei")), _rehash(f)), "manifest.json's signature (manifest.sig) does not verify"),
        (lambda f, e: _other_key_signs(f), "manifest.json's signature (manifest.sig) does not verify"),
        (lambda f, e: f.__setitem__("events/forged.json", b"{}"), "events/forged.json was added"),
        (lambda f, e: f.pop(e), "{event} was removed"),
        (lambda f, e: f.pop("manifest.sig"), "manifest.sig was removed"),
    ],
    ids=["event-edited", "alert-edited", "rehashed", "other-key", "file-added", "file-removed", "signature-removed"],
)
def test_a_changed_pack_is_refused_with_the_reason(exported, change, reason, tmp_path, capsys):
    data, public = exported
    event = _event_name(data)
    bad = _rewrite(data, lambda files: change(files, event))

    verdict = verify_pack(bad, public)

    assert not verdict.ok and any(reason.format(event=event) in p for p in verdict.problems), verdict.problems
    (tmp_path / "bad.zip").write_bytes(bad)
    (tmp_path / "key.pem").write_bytes(public)
    assert server_main(["verify-pack", str(tmp_path / "bad.zip"), "--public-key", str(tmp_path / "key.pem")]) == 1
    assert reason.format(event=event) in capsys.readouterr().out


def test_without_the_collectors_key_a_pack_signed_by_another_is_only_whole(exported):
    data, public = exported
    forged = _rewrite(data, _other_key_signs)
    assert not verify_pack(forged, public).ok
    alone = verify_pack(forged)  # against the key inside: it names that key, and must be compared
    assert alone.fingerprint != verify_pack(data, public).fingerprint


def _snippet(tmp_path) -> Path:
    found = SNIPPET.search((ROOT / "docs" / "evidence.md").read_text(encoding="utf-8"))
    assert found, "docs/evidence.md has no verify snippet"
    path = tmp_path / "verify_pack.py"
    path.write_text(found.group(1), encoding="utf-8")
    return path


def _run_snippet(snippet: Path, pack: bytes, public: bytes, tmp_path) -> subprocess.CompletedProcess:
    (tmp_path / "p.zip").write_bytes(pack)
    (tmp_path / "k.pem").write_bytes(public)
    return subprocess.run([sys.executable, str(snippet), str(tmp_path / "p.zip"), str(tmp_path / "k.pem")], capture_output=True, text=True, timeout=60)


def test_the_documented_snippet_checks_a_pack_with_the_public_key_alone(exported, tmp_path):
    data, public = exported
    snippet = _snippet(tmp_path)
    done = _run_snippet(snippet, data, public, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "valid", done.stdout + done.stderr
    event = _event_name(data)
    for change in (
        lambda f: f.__setitem__(event, f[event].replace(b"zhang.wei", b"li.lei")),
        lambda f: (f.__setitem__(event, f[event].replace(b"zhang.wei", b"li.lei")), _rehash(f)),
        _other_key_signs,
        lambda f: f.__setitem__("extra.txt", b"x"),
        lambda f: f.pop(event),
    ):
        done = _run_snippet(snippet, _rewrite(data, change), public, tmp_path)
        assert done.returncode == 1 and done.stdout.startswith("NOT VALID"), done.stdout + done.stderr


def test_a_pack_carries_the_seals_of_its_events_and_their_proofs_check(admin, send, store, clock, tmp_path):
    send(make_egress("core", seq=1, prev_hash=None, match={"method": "exact", "similarity": 1.0}))
    firm = zone(admin.app.state.config.timezone)
    _, end = seals.day_bounds(clock().astimezone(firm).date(), firm)
    unsealed = admin.get("/console/alerts/1/evidence.zip").content
    key = admin.app.state.signer.key()
    public = key.public_pem.encode("ascii")
    assert verify_pack(unsealed, public).events_unsealed == 1
    clock.now = end + timedelta(seconds=seals.GRACE_S + 1)
    seals.seal_pending(store.engine, key, firm, clock())

    data = admin.get("/console/alerts/1/evidence.zip").content
    verdict = verify_pack(data, public)

    assert verdict.ok and (verdict.events_sealed, verdict.events_unsealed) == (1, 0), verdict
    assert _run_snippet(_snippet(tmp_path), data, public, tmp_path).stdout.strip() == "valid"
    # a seal the collector's key did not sign (an insider's pack, manifest signed anew) is refused
    seal_name = next(n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if n.startswith("seals/") and n.endswith(".json"))

    def forge(files):
        files[seal_name] = files[seal_name].replace(b'"count":1', b'"count":2')
        _rehash(files)
        files["manifest.sig"] = key.sign(files["manifest.json"]).encode()
        _rehash(files)

    verdict = verify_pack(_rewrite(data, forge), public)
    assert not verdict.ok and any(f"{seal_name}: the seal's signature does not verify" in p for p in verdict.problems), verdict.problems
