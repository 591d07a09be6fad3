"""Nothing in an archive goes unread without saying so: every way a member can hide (a password, a
damaged directory or header, a bomb, padding that spends the budget, a member over its allowance)
ends in a problem with a stable detection id, and the members that can be read still are.

The archives are made by the tools people use: zip -P, 7z (p7zip) and Python's zipfile and tarfile.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.content.archive import (
    BOMB,
    CORRUPT,
    ENCRYPTED,
    SKIPPED,
    TOO_DEEP,
    TRUNCATED,
    Limits,
    Listing,
    walk_archive,
)

MB = 1024 * 1024
SECRET = "商业秘密\n涂层配方 v7\n".encode()  # a marked note: the member padding would hide
DRAWING = b"AC1032 pump impeller rev C\n" + bytes(range(256)) * 40


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian package: {'zip' if name == 'zip' else 'p7zip-full'})")
    return found


def sources(tmp_path: Path, members: dict[str, bytes]) -> list[str]:
    for name, data in members.items():
        (tmp_path / name).write_bytes(data)
    return list(members)


def zip_tool(tmp_path: Path, *switches: str, members: dict[str, bytes]) -> Path:
    names = sources(tmp_path, members)
    subprocess.run([tool("zip"), "-q", *switches, "out.zip", *names], cwd=tmp_path, check=True)
    return tmp_path / "out.zip"


def seven_zip_tool(tmp_path: Path, *switches: str, members: dict[str, bytes]) -> Path:
    names = sources(tmp_path, members)
    subprocess.run([tool("7z"), "a", "-bd", "-bso0", *switches, "out.7z", *names], cwd=tmp_path, check=True)
    return tmp_path / "out.7z"


def zip_bytes(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", method) as z:
        warnings.simplefilter("ignore")  # "Duplicate name": on purpose below
        for name, data in members:
            z.writestr(name, data)
    return buffer.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


def tar_file(tmp_path: Path, name: str, members: list[tuple[str, bytes]], mode: str) -> Path:
    with tarfile.open(tmp_path / name, mode) as tar:
        for member, data in members:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return tmp_path / name


# --- how each archive is made -------------------------------------------------------------------


def password_zip(tmp_path: Path) -> Path:
    return zip_tool(tmp_path, "-P", "secret", members={"secret.txt": SECRET, "pump.dwg": DRAWING})


def aes_7z(tmp_path: Path) -> Path:
    return seven_zip_tool(tmp_path, "-psecret", members={"secret.txt": SECRET, "pump.dwg": DRAWING})


def aes_7z_header(tmp_path: Path) -> Path:
    return seven_zip_tool(tmp_path, "-psecret", "-mhe=on", members={"secret.txt": SECRET})


def zip_directory_cut(tmp_path: Path) -> Path:
    return write(tmp_path, "cut.zip", zip_bytes([("secret.txt", SECRET), ("pump.dwg", DRAWING)])[:-30])


def zip_member_damaged(tmp_path: Path) -> Path:
    data = bytearray(zip_bytes([("secret.txt", SECRET), ("pump.dwg", DRAWING)], zipfile.ZIP_STORED))
    at = data.find(DRAWING[:27])
    data[at + 100 : at + 150] = bytes(50)  # its bytes, not its headers: the CRC no longer holds
    return write(tmp_path, "damaged.zip", bytes(data))


def zip_bomb_beside_a_secret(tmp_path: Path) -> Path:
    return write(tmp_path, "bomb.zip", zip_bytes([("zeros.bin", bytes(64 * MB)), ("secret.txt", SECRET)]))


def tar_gz_bomb(tmp_path: Path) -> Path:
    return tar_file(tmp_path, "bomb.tar.gz", [("zeros.bin", bytes(64 * MB)), ("secret.txt", SECRET)], "w:gz")


def nested_four_deep(tmp_path: Path) -> Path:
    data = zip_bytes([("secret.txt", SECRET)])
    for level in (4, 3, 2):
        data = zip_bytes([(f"level{level}.zip", data)])
    return write(tmp_path, "deep.zip", data)


def tar_header_damaged(tmp_path: Path, mode: str = "w") -> Path:
    """A tar whose second header is garbage: tarfile stops there quietly, the secret after it unread."""
    plain = tar_file(tmp_path, "x.tar", [("a.txt", b"a" * 100), ("b.txt", b"b" * 100), ("secret.txt", SECRET)], "w")
    data = bytearray(plain.read_bytes())
    data[512 + 512 + 148 : 512 + 512 + 156] = b"garbage!"  # b.txt's header checksum
    if mode == "w":
        return write(tmp_path, "damaged.tar", bytes(data))
    return write(tmp_path, "damaged.tar.gz", gzip.compress(bytes(data)))


def zip_repeated_name(tmp_path: Path) -> Path:
    return write(tmp_path, "twice.zip", zip_bytes([("report.txt", SECRET), ("report.txt", b"nothing here")]))


def zip_directory_holding_bytes(tmp_path: Path) -> Path:
    data = zip_bytes([("secretX", SECRET)])
    return write(tmp_path, "dir.zip", data.replace(b"secretX", b"secret/"))


def padded_zip(tmp_path: Path) -> Path:
    """300 MB of stored padding listed before the secret: the padding alone would spend the budget."""
    path = tmp_path / "padded.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in (1, 2, 3):
            z.writestr(f"pad{i}.bin", bytes(100_000_000))
        z.writestr("secret.txt", SECRET)
    return path


def padded_tar(tmp_path: Path) -> Path:
    return tar_file(
        tmp_path, "padded.tar", [*((f"pad{i}.bin", bytes(100_000_000)) for i in (1, 2, 3)), ("secret.txt", SECRET)], "w"
    )


RANDOM_PADS = {f"pad{i}.bin": os.urandom(3 * MB) for i in (1, 2, 3)}  # incompressible
SMALL = Limits(max_member_bytes=4 * MB, max_total_bytes=8 * MB)  # the 300 MB case, scaled by 1/32


def padded_solid_7z(tmp_path: Path) -> Path:
    """One solid LZMA block: padding first in the stream, so reaching the secret means decoding it."""
    return seven_zip_tool(tmp_path, "-mx=1", "-ms=on", members={**RANDOM_PADS, "secret.txt": SECRET})


def padded_tar_gz(tmp_path: Path) -> Path:
    return tar_file(tmp_path, "padded.tar.gz", [*RANDOM_PADS.items(), ("secret.txt", SECRET)], "w:gz")


def member_over_its_allowance(tmp_path: Path) -> Path:
    return write(tmp_path, "big.zip", zip_bytes([("big.bin", bytes(range(256)) * 8192), ("secret.txt", SECRET)]))


@dataclass(frozen=True)
class Case:
    make: Callable[[Path], Path]
    problems: set[tuple[str, str]]  # (kind, where)
    hashed: set[str]  # members hashed; when secret.txt is among them, its marking was seen too
    limits: Limits = Limits()


CASES = {
    # before: the same
    "zip -P": Case(password_zip, {(ENCRYPTED, "secret.txt"), (ENCRYPTED, "pump.dwg")}, set()),
    "7z AES": Case(aes_7z, {(ENCRYPTED, "secret.txt"), (ENCRYPTED, "pump.dwg")}, set()),
    "7z AES, names too": Case(aes_7z_header, {(ENCRYPTED, "")}, set()),
    "zip directory cut": Case(zip_directory_cut, {(CORRUPT, "")}, set()),
    "zip member damaged": Case(zip_member_damaged, {(CORRUPT, "pump.dwg")}, {"secret.txt"}),
    "nested four deep": Case(nested_four_deep, {(TOO_DEEP, "level2.zip!/level3.zip!/level4.zip")}, {"level2.zip", "level2.zip!/level3.zip", "level2.zip!/level3.zip!/level4.zip"}),
    # before: the bomb stopped the archive: (archive_bomb, "") and secret.txt never read
    "zip bomb beside a secret": Case(zip_bomb_beside_a_secret, {(BOMB, "zeros.bin")}, {"secret.txt"}),
    # the same before and after: a stream bomb stops the stream; what follows it is unknown
    "tar.gz bomb": Case(tar_gz_bomb, {(BOMB, "")}, set()),
    # before: tarfile stopped quietly at the bad header: a.txt hashed, no problem at all
    "tar header damaged": Case(tar_header_damaged, {(CORRUPT, "")}, {"a.txt"}),
    "tar.gz header damaged": Case(lambda p: tar_header_damaged(p, "w:gz"), {(CORRUPT, "")}, {"a.txt"}),
    # before: the last report.txt read twice, the first (the secret) never
    "zip name repeated": Case(zip_repeated_name, set(), {"report.txt"}),
    # before: a name ending in "/" was passed over as a directory, its bytes unread
    "zip directory holding bytes": Case(zip_directory_holding_bytes, set(), {"secret/"}),
    # before: (inspection_truncated, "big.bin")
    "member over its allowance": Case(member_over_its_allowance, {(SKIPPED, "big.bin")}, {"secret.txt"}, Limits(max_member_bytes=1 * MB)),
    # before: pad1 and pad2 hashed, then (inspection_truncated, ""): secret.txt neither read nor named
    "padded zip, 300 MB": Case(padded_zip, {(TRUNCATED, ""), (SKIPPED, "pad3.bin")}, {"secret.txt", "pad1.bin", "pad2.bin"}),
    "padded tar, 300 MB": Case(padded_tar, {(TRUNCATED, ""), (SKIPPED, "pad3.bin")}, {"secret.txt", "pad1.bin", "pad2.bin"}),
    "padded solid 7z": Case(padded_solid_7z, {(TRUNCATED, ""), (SKIPPED, "pad3.bin")}, {"secret.txt", "pad1.bin", "pad2.bin"}, SMALL),
    "padded tar.gz": Case(padded_tar_gz, {(TRUNCATED, ""), (SKIPPED, "pad3.bin")}, {"secret.txt", "pad1.bin", "pad2.bin"}, SMALL),
}  # fmt: skip


def walk(path: Path, limits: Limits) -> Listing:
    file_type = {".zip": "zip", ".7z": "7z", ".tar": "tar", ".gz": "gzip"}[path.suffix]
    with open(path, "rb") as f:
        return walk_archive(f, file_type, limits)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_blind_spot_is_a_problem_and_readable_members_are_read(tmp_path, case):
    listing = walk(case.make(tmp_path), case.limits)
    assert {(p.kind, p.where) for p in listing.problems} == case.problems, listing.problems
    assert {m.name for m in listing.members} == case.hashed
    if "secret.txt" in case.hashed:
        [secret] = [m for m in listing.members if m.name == "secret.txt"]
        assert secret.sha256 == sha256(SECRET)
        assert "trade_secret_marking" in {d.detector for d in secret.detections}
    detections = {d.detector: d for d in listing.detections()}
    assert set(detections) >= {kind for kind, _ in case.problems}
    if (skipped := [where for kind, where in case.problems if kind == SKIPPED]) and len(skipped) == 1:
        assert detections[SKIPPED].sample == skipped[0] and detections[SKIPPED].count == 1


def test_both_members_of_a_repeated_name_are_hashed(tmp_path):
    listing = walk(zip_repeated_name(tmp_path), Limits())
    assert sorted(m.sha256 for m in listing.members) == sorted([sha256(SECRET), sha256(b"nothing here")])


def test_the_padded_zip_is_walked_in_seconds(tmp_path):
    path = padded_zip(tmp_path)
    started = time.monotonic()
    listing = walk(path, Limits())
    seconds = time.monotonic() - started
    print(f"300 MB padded zip walked in {seconds:.2f} s")  # measured: see the report
    assert "secret.txt" in {m.name for m in listing.members}


class Ticking:
    """A clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_member_over_its_time_allowance_is_named_and_the_walk_goes_on(tmp_path):
    members = [("slow.bin", bytes(range(256)) * 4096), ("secret.txt", SECRET), ("later.bin", bytes(range(256)) * 4096)]
    path = write(tmp_path, "slow.zip", zip_bytes(members, zipfile.ZIP_STORED))
    with open(path, "rb") as f:
        listing = walk_archive(f, "zip", Limits(max_member_seconds=5, max_seconds=1000), clock=Ticking())
    assert [(p.kind, p.where) for p in listing.problems] == [(SKIPPED, "slow.bin"), (SKIPPED, "later.bin")]
    assert all("5 s a member may take" in p.why for p in listing.problems)
    assert [m.name for m in listing.members] == ["secret.txt"]


def test_when_the_walk_runs_out_of_time_every_member_not_reached_is_named(tmp_path):
    members = [(f"m{i}.txt", bytes([i]) * 1000) for i in range(6)]
    path = write(tmp_path, "many.zip", zip_bytes(members))
    with open(path, "rb") as f:
        listing = walk_archive(f, "zip", Limits(max_seconds=12), clock=Ticking())
    hashed = {m.name for m in listing.members}
    named = {p.where for p in listing.problems if p.kind == SKIPPED}
    assert 0 < len(hashed) < 6
    assert hashed | named == {name for name, _ in members} and not hashed & named
    assert [p.why for p in listing.problems if p.kind == TRUNCATED] == ["archive budget ran out: time"]
    assert {d.detector: d.count for d in listing.detections()}[SKIPPED] == len(named)
