"""`make run`'s demo folder holds the database, the first admin's password and an API token: the
collector's own check of its files must find nothing open to other users there."""

from __future__ import annotations

import os
import stat

from server.demo import _write_demo
from server.filemodes import open_files


def test_the_demo_folder_is_the_owners_alone(tmp_path):
    old = os.umask(0o022)  # a shell's usual umask: the folder would be 0755
    try:
        root = tmp_path / "var"
        _write_demo(str(root), str(root / "config.yaml"), 8765)
    finally:
        os.umask(old)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    database = root / "miwei.db"
    database.touch(mode=0o600)
    assert open_files(f"sqlite:///{database}", None) == []
