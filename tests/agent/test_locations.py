"""Register location patterns made into folders (agent/locations.py): hostile patterns bounded."""

from __future__ import annotations

import os

import pytest

from agent import locations
from agent.locations import expand


@pytest.fixture
def tree(tmp_path):
    for user in ("alice", "bob"):
        (tmp_path / "home" / user / "研发" / "图纸").mkdir(parents=True)
    (tmp_path / "home" / "carol").mkdir()
    return tmp_path


def test_star_matches_existing_folders_only(tree):
    got = expand(f"{tree}/home/*/研发/图纸", [])
    assert got.folders == (f"{tree}/home/alice/研发/图纸", f"{tree}/home/bob/研发/图纸")
    assert got.problem == ""


@pytest.mark.parametrize("token", ["~", "$HOME", "${HOME}", "%USERPROFILE%"])
def test_home_variables_stand_for_every_home(tree, token):
    homes = [str(tree / "home" / u) for u in ("alice", "bob", "carol")]
    sep = "\\" if token.startswith("%") else "/"
    got = expand(f"{token}{sep}研发{sep}图纸", homes)
    assert got.folders == (f"{tree}/home/alice/研发/图纸", f"{tree}/home/bob/研发/图纸")


def test_user_variable_stands_for_each_user(tree):
    users = [("alice", "/nonexistent/a"), ("bob", "/nonexistent/b")]
    assert expand(f"{tree}/home/$USER/研发", users).folders == (f"{tree}/home/alice/研发", f"{tree}/home/bob/研发")
    assert expand(f"{tree}/home/${{USER}}/研发", users).folders == (f"{tree}/home/alice/研发", f"{tree}/home/bob/研发")


def test_symlinks_are_not_followed(tree, tmp_path):
    secret = tmp_path / "elsewhere" / "图纸"
    secret.mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere", tree / "home" / "carol" / "研发")
    assert expand(f"{tree}/home/*/研发/图纸", []).folders == (
        f"{tree}/home/alice/研发/图纸",
        f"{tree}/home/bob/研发/图纸",
    )
    assert expand(f"{tree}/home/carol/研发/图纸", []).folders == ()
    os.symlink(tree / "home" / "alice", tree / "home" / "dave")  # a link matched by *
    assert f"{tree}/home/dave/研发/图纸" not in expand(f"{tree}/home/*/研发/图纸", []).folders


def test_wide_pattern_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(locations, "MAX_FOLDERS", 50)
    for a in range(10):
        for b in range(10):
            (tmp_path / f"a{a}" / f"b{b}" / "c").mkdir(parents=True)
    got = expand(f"{tmp_path}/*/*/*", [])
    assert len(got.folders) == 50 and "more than 50" in got.problem
    monkeypatch.setattr(locations, "MAX_LISTED", 30)
    got = expand(f"{tmp_path}/*/*/*", [])
    assert len(got.folders) < 30 and "directory entries" in got.problem


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("/*/*/*", "first folder must be written out"),
        ("/home", "at least 2 folders deep"),
        ("/home/../etc/x", "'..'"),
        ("/home/**/图纸", "'**'"),
        ("/home/$LOGNAME/图纸", "only ~"),
        ("/home/%APPDATA%/x", "only ~"),
        ("研发/图纸", "not an absolute path"),
        ("D:\\图纸", "not an absolute path"),
    ],
)
def test_hostile_patterns_are_refused(pattern, problem):
    got = expand(pattern, ["/home/alice"])
    assert got.folders == () and problem in got.problem


def test_excluded_folders_are_left_out(tree):
    got = expand(f"{tree}/home/*/研发", [], excluded=[f"{tree}/home/bob"])
    assert got.folders == (f"{tree}/home/alice/研发",)
