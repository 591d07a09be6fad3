"""Signed evidence packs: one alert's evidence as a ZIP that anyone with the public key can check.

The pack holds the alert (alert.json), its events as the console shows them (events.json) and
each event exactly as the agent sent it and the collector stored it (events/<id>.json: its chain
digest is the one the agent's chain and the seals name), the daily seals covering the events
(seals/<agent>_<day>.json and .sig, server/seals.py) with each event's Merkle proof (proofs.json),
the collector's public key (public_key.pem), VERIFY.txt, manifest.json listing the SHA-256 of
every file above, manifest.sig (the Ed25519 signature of manifest.json, base64) and SHA256SUMS
(every file but itself, for `sha256sum -c`). Whoever edits a file must re-hash the manifest, and
then its signature fails; whoever re-signs it needs the collector's private key.
server/packcheck.py checks a pack; docs/evidence.md shows how without MiWei.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass

from server.signing import SigningKey

PACK_FORMAT = "miwei-evidence-pack/1"
MANIFEST, SIGNATURE, SUMS, PUBLIC_KEY, HOWTO = "manifest.json", "manifest.sig", "SHA256SUMS", "public_key.pem", "VERIFY.txt"
UNLISTED = (MANIFEST, SIGNATURE, SUMS)  # the files the manifest cannot list: it, its signature, the sums over it


@dataclass(frozen=True)
class Pack:
    data: bytes
    sha256: str  # of the ZIP: what the audit log keeps
    fingerprint: str
    files: int


def build(
    alert: dict,
    events_shown: list[dict],
    events_stored: dict[str, dict],
    seal_files: dict[str, dict],
    proofs: list[dict],
    key: SigningKey,
    generated_at: str,
    generated_by: str,
    extra_files: dict[str, bytes] | None = None,
) -> Pack:
    """The signed ZIP. events_stored: event id -> the stored body; extra_files: more files to
    list and sign (a report)."""
    files: dict[str, bytes] = {"alert.json": _json(alert), "events.json": _json(events_shown)}
    for event_id, body in sorted(events_stored.items()):
        files[f"events/{event_id}.json"] = _json(body)
    for name, seal in sorted(seal_files.items()):
        files[name + ".json"] = seal["body"]
        files[name + ".sig"] = seal["signature"].encode("ascii") + b"\n"
        if seal.get("tsa_token"):  # RFC 3161 token of the seal (server/tsa.py)
            files[name + ".tsr"] = base64.b64decode(seal["tsa_token"])
    files["proofs.json"] = _json({"leaf": "rules.events.chain_digest of the event file", "tree": "RFC 6962", "events": proofs})
    files[PUBLIC_KEY] = key.public_pem.encode("ascii")
    files[HOWTO] = _howto(key.fingerprint).encode("utf-8")
    for name, data in (extra_files or {}).items():
        if name in files or name in UNLISTED:
            raise ValueError(f"{name} is a file of the pack already")
        files[name] = data
    manifest = {
        "format": PACK_FORMAT,
        "alert_id": alert.get("id"),
        "generated_at": generated_at,
        "generated_by": generated_by,
        "algorithm": "sha256",
        "signature": "ed25519",
        "public_key_sha256": key.fingerprint,
        "files": [{"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()],
    }
    files[MANIFEST] = _json(manifest)
    files[SIGNATURE] = key.sign(files[MANIFEST]).encode("ascii") + b"\n"
    files[SUMS] = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in files.items()).encode("utf-8")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as pack:
        for name, data in files.items():
            pack.writestr(name, data)
    data = out.getvalue()
    return Pack(data, hashlib.sha256(data).hexdigest(), key.fingerprint, len(files))


def _howto(fingerprint: str) -> str:
    return (
        "MiWei evidence pack / MiWei 证据包\n\n"
        f"Signed with the collector key / 采集端签名密钥指纹 (SHA-256): {fingerprint}\n\n"
        "1. unzip the pack, then: sha256sum -c SHA256SUMS\n"
        "2. miwei-server verify-pack PACK.zip --public-key collector.pub.pem\n"
        "   (or the Python snippet in MiWei's docs/evidence.md, with the public key alone)\n"
        "Compare the fingerprint above with the one the collector shows (miwei-server signing-key).\n"
    )


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
