"""The broken config files in tests/data/config/invalid/ and the exact errors each must produce.

Each NAME.yaml has NAME.expected beside it: the exact error lines, one per line, in order, with
{dir} standing for the folder holding NAME.yaml (relative paths in a config resolve against it).
agent-*.yaml files are read by the agent's loader, server-*.yaml files by the collector's.
"""

from __future__ import annotations

import os
import shutil
import sys

INVALID_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "config", "invalid")
EXAMPLE_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config.example.yaml")
SECRET = "test-secret-0123456789"


def invalid_cases(prefix: str) -> list[str]:
    return sorted(
        name[: -len(".yaml")] for name in os.listdir(INVALID_DIR) if name.startswith(prefix) and name.endswith(".yaml")
    )


def case_path(name: str, folder: str = INVALID_DIR) -> str:
    return os.path.join(folder, f"{name}.yaml")


def expected_errors(name: str, folder: str = INVALID_DIR) -> list[str]:
    with open(os.path.join(INVALID_DIR, f"{name}.expected"), encoding="utf-8") as f:
        return f.read().replace("{dir}", folder).splitlines()


def copy_case(name: str, folder: str) -> str:
    """The broken config copied to `folder` under its own name, so {dir} becomes `folder`."""
    return shutil.copy(case_path(name), case_path(name, folder))


def write_filled_example(folder: str) -> tuple[str, str]:
    """config.example.yaml with its placeholders filled in: (config path, classified folder)."""
    with open(EXAMPLE_CONFIG, encoding="utf-8") as f:
        text = f.read()
    assert text.count("enroll_secret: change-me") == 2, "the example should carry the placeholder on both sides"
    assert text.count("path: /srv/rnd/drawings") == 1
    drawings = os.path.join(folder, "drawings")
    os.makedirs(drawings)
    text = text.replace("enroll_secret: change-me", f"enroll_secret: {SECRET}")
    text = text.replace("path: /srv/rnd/drawings", f"path: {drawings}")
    path = os.path.join(folder, "config.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path, drawings


def console_script(name: str) -> str:
    """A console script installed beside the running interpreter (the project's virtualenv)."""
    return os.path.join(os.path.dirname(sys.executable), name)
