"""`pip install .` must carry the console's templates, static files and catalogues (setup.cfg package_data)."""

from __future__ import annotations

import configparser
import glob
import os

REPO = os.path.join(os.path.dirname(__file__), "..", "..")


def test_package_data_covers_every_console_file_the_code_reads():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    patterns = [p.strip() for p in cfg["options.package_data"]["server"].split(",")]
    server = os.path.join(REPO, "server")
    covered = {os.path.normpath(f) for p in patterns for f in glob.glob(os.path.join(server, p))}
    needed = [
        os.path.normpath(f)
        for folder in ("templates", "static", "locale")
        for f in glob.glob(os.path.join(server, "console", folder, "**", "*"), recursive=True)
        if os.path.isfile(f) and not f.endswith((".pot", ".mo"))
    ]
    assert len(needed) > 15
    assert sorted(set(needed) - covered) == []
