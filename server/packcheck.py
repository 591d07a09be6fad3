"""Checking an evidence pack (server/evidence.py): valid, or which file was changed, added or removed.

In order: the ZIP's names (no duplicates, no paths out of the folder), the key (the one given, else
the one in the pack, which then proves only that the pack is whole: its fingerprint must be
compared with the collector's), the manifest's signature, every file against the manifest (each
changed, added or removed file named), SHA256SUMS against the files, then the seals' signatures
and each event's Merkle proof to its seal. Every problem is reported, not only the first.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass

from rules.events import chain_digest
from server import merkle, signing
from server.evidence import MANIFEST, PACK_FORMAT, PUBLIC_KEY, SIGNATURE, SUMS, UNLISTED


@dataclass(frozen=True)
class PackVerdict:
    ok: bool
    problems: tuple[str, ...]
    fingerprint: str | None  # of the key the pack was checked against
    key_given: bool  # False: checked against the key inside the pack
    events_sealed: int  # events proven part of a signed seal
    events_unsealed: int
    files: int


def verify_pack(data: bytes, public_pem: bytes | None = None) -> PackVerdict:
    problems: list[str] = []
    try:
        files = _read(data)
    except (zipfile.BadZipFile, ValueError) as exc:
        return PackVerdict(False, (f"not a readable pack: {exc}",), None, public_pem is not None, 0, 0, 0)
    missing = [n for n in (MANIFEST, SIGNATURE, PUBLIC_KEY, SUMS) if n not in files]
    if missing:
        return PackVerdict(False, tuple(f"{n} was removed" for n in missing), None, public_pem is not None, 0, 0, len(files))
    try:
        public = signing.load_public(public_pem if public_pem is not None else files[PUBLIC_KEY])
        packed = signing.load_public(files[PUBLIC_KEY])
    except ValueError as exc:
        return PackVerdict(False, (f"the public key cannot be read: {exc}",), None, public_pem is not None, 0, 0, len(files))
    fingerprint = signing.fingerprint(public)
    if signing.fingerprint(packed) != fingerprint:
        problems.append(f"{PUBLIC_KEY} is another key ({signing.fingerprint(packed)}) than the collector's ({fingerprint})")
    if not signing.verify(public, files[MANIFEST], files[SIGNATURE].decode("ascii", "replace").strip()):
        problems.append(f"{MANIFEST}'s signature ({SIGNATURE}) does not verify with key {fingerprint}: the manifest was changed or signed by another key")
    try:
        manifest = json.loads(files[MANIFEST])
        listed = {f["name"]: f["sha256"] for f in manifest["files"]}
    except (ValueError, KeyError, TypeError):
        return PackVerdict(False, (*problems, f"{MANIFEST} cannot be read"), fingerprint, public_pem is not None, 0, 0, len(files))
    if manifest.get("format") != PACK_FORMAT:
        problems.append(f"{MANIFEST} is not a {PACK_FORMAT} manifest")
    if manifest.get("public_key_sha256") != fingerprint:
        problems.append(f"{MANIFEST} names key {manifest.get('public_key_sha256')}, not {fingerprint}")
    problems += _against_manifest(files, listed)
    problems += _sums(files)
    sealed, unsealed, seal_problems = _seals(files, public)
    problems += seal_problems
    return PackVerdict(not problems, tuple(problems), fingerprint, public_pem is not None, sealed, unsealed, len(files))


def _read(data: bytes) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as pack:
        for info in pack.infolist():
            name = info.filename
            if name.startswith("/") or ".." in name.split("/") or "\\" in name:
                raise ValueError(f"{name!r} points out of the pack's folder")
            if name in files:
                raise ValueError(f"{name} is in the pack twice")
            if not info.is_dir():
                files[name] = pack.read(info)
    return files


def _against_manifest(files: dict[str, bytes], listed: dict[str, str]) -> list[str]:
    problems = []
    for name, digest in listed.items():
        if name not in files:
            problems.append(f"{name} was removed")
        elif hashlib.sha256(files[name]).hexdigest() != digest:
            problems.append(f"{name} was changed (its SHA-256 is not the manifest's)")
    for name in sorted(set(files) - set(listed) - set(UNLISTED)):
        problems.append(f"{name} was added (the manifest does not list it)")
    return problems


def _sums(files: dict[str, bytes]) -> list[str]:
    sums: dict[str, str] = {}
    for line in files[SUMS].decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        sums[name] = digest
    problems = []
    for name, data in files.items():
        if name != SUMS and sums.get(name) != hashlib.sha256(data).hexdigest():
            problems.append(f"{SUMS} does not match {name}")
    problems += [f"{SUMS} names {name}, which is not in the pack" for name in sorted(set(sums) - set(files))]
    return problems


def _seals(files: dict[str, bytes], public) -> tuple[int, int, list[str]]:
    """Each event's proof against its seal, each seal's signature."""
    try:
        proofs = json.loads(files.get("proofs.json", b"{}"))["events"]
    except (ValueError, KeyError, TypeError):
        return 0, 0, ["proofs.json cannot be read"]
    try:
        return _proofs(files, public, proofs)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return 0, 0, [f"proofs.json or a seal is malformed: {type(exc).__name__} {exc}"]


def _proofs(files: dict[str, bytes], public, proofs: list[dict]) -> tuple[int, int, list[str]]:
    problems, sealed, unsealed, checked = [], 0, 0, {}
    for p in proofs:
        if not p.get("sealed"):
            unsealed += 1
            continue
        name = p["seal"]
        if name not in checked:
            body, sig = files.get(name), files.get(name[: -len(".json")] + ".sig")
            ok = body is not None and sig is not None and signing.verify(public, body, sig.decode("ascii", "replace").strip())
            if not ok:
                problems.append(f"{name}: the seal's signature does not verify (changed, missing or signed by another key)")
            token = files.get(name[: -len(".json")] + ".tsr")
            if ok and token is not None and hashlib.sha256(body).digest() not in token:
                problems.append(f"{name[: -len('.json')]}.tsr is not a timestamp of this seal")
            checked[name] = json.loads(body) if ok else None
        seal, event = checked[name], files.get(p["event"])
        if seal is None or event is None:
            problems.append(f"{p['event']}: no valid seal or event file to prove")
            continue
        leaf = bytes.fromhex(chain_digest(json.loads(event)))
        path = [bytes.fromhex(h) for h in p["path"]]
        root = merkle.root_from_proof(leaf, p["index"], seal["count"], path)
        if root is None or root.hex() != seal["merkle_root"]:
            problems.append(f"{p['event']} is not part of sealed day {seal['day']} of agent {seal['agent_id']}: its Merkle proof fails")
        else:
            sealed += 1
    return sealed, unsealed, problems
