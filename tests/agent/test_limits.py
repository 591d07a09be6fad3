from __future__ import annotations

import os

import pytest

from agent.limits import WANTED, raise_inotify_limits


def test_low_limits_are_raised_and_high_ones_kept(tmp_path):
    (tmp_path / "max_queued_events").write_text("16384\n")
    (tmp_path / "max_user_watches").write_text("1048576\n")
    in_force = raise_inotify_limits(str(tmp_path))
    assert in_force == {"max_queued_events": WANTED["max_queued_events"], "max_user_watches": 1048576}
    assert (tmp_path / "max_queued_events").read_text() == str(WANTED["max_queued_events"])
    assert (tmp_path / "max_user_watches").read_text() == "1048576\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anything")
def test_unwritable_limit_is_reported_not_fatal(tmp_path):
    (tmp_path / "max_queued_events").write_text("16384\n")
    (tmp_path / "max_queued_events").chmod(0o444)
    assert raise_inotify_limits(str(tmp_path))["max_queued_events"] == 16384


def test_missing_proc_files_are_skipped(tmp_path):
    assert raise_inotify_limits(str(tmp_path / "nope")) == {}
