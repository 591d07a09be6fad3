from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import uuid

import pytest

from tests.e2e.harness import Deployment

pytestmark = pytest.mark.e2e

DRAWING = b"AC1032 pump impeller rev C\n" + os.urandom(50_000)
FORMULA = "商业秘密\n涂层配方 v7\n".encode() + os.urandom(1000)


@pytest.fixture
def classified(tmp_path):
    """Two register entries: drawings (core) and formulas (important)."""
    drawings = tmp_path / "rnd" / "drawings"
    formulas = tmp_path / "rnd" / "formulas"
    drawings.mkdir(parents=True)
    formulas.mkdir(parents=True)
    (drawings / "pump-impeller.dwg").write_bytes(DRAWING)
    (formulas / "coating.txt").write_bytes(FORMULA)
    return {"drawings": drawings, "formulas": formulas}


@pytest.fixture
def deployment(tmp_path, classified):
    usb = tmp_path / "usb"
    usb.mkdir()
    d = Deployment(
        tmp_path,
        [(classified["drawings"], "core", "Product drawings"), (classified["formulas"], "important", "Formulas")],
        egress_folders=[usb],
    )
    d.usb = usb
    yield d
    d.close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def copy(src, dest) -> None:
    shutil.copyfile(src, dest)


@pytest.fixture
def employee():
    """An unprivileged user made for the test (and removed after it): the employee who wants a
    drawing out, with no right the agent does not expect them to have."""
    if os.geteuid() != 0:
        pytest.skip("creating a user needs root")
    for tool in ("useradd", "userdel", "setpriv"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is missing (Debian packages passwd, util-linux)")
    name = "mw" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        subprocess.run(["userdel", name], check=False)


def as_user(user: pwd.struct_passwd, *argv: str) -> list[str]:
    """argv run as user: their uid and gid, no supplementary groups, no capabilities."""
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--", *argv]
