"""`make run` says, before its agent starts, which host-wide inotify limits the agent raises and
how to put them back."""

from __future__ import annotations

from agent.limits import WANTED, limits_to_raise, raise_inotify_limits
from server.demo import limits_notice


def _proc(tmp_path, queued: int, watches: int):
    (tmp_path / "max_queued_events").write_text(f"{queued}\n")
    (tmp_path / "max_user_watches").write_text(f"{watches}\n")
    return str(tmp_path)


def test_the_notice_names_each_low_limit_and_the_undo_command(tmp_path):
    proc = _proc(tmp_path, 16384, 8192)
    notice = limits_notice(limits_to_raise(proc))
    assert f"fs.inotify.max_queued_events: 16384 -> {WANTED['max_queued_events']}" in notice
    assert f"fs.inotify.max_user_watches: 8192 -> {WANTED['max_user_watches']}" in notice
    assert "until reboot" in notice
    assert "To undo: sudo sysctl -w fs.inotify.max_queued_events=16384 fs.inotify.max_user_watches=8192" in notice
    raise_inotify_limits(proc)  # what the agent then does: exactly the limits the notice named
    assert limits_to_raise(proc) == {}


def test_nothing_is_said_when_the_limits_are_high_enough(tmp_path):
    proc = _proc(tmp_path, WANTED["max_queued_events"], 2 * WANTED["max_user_watches"])
    assert limits_to_raise(proc) == {} and limits_notice(limits_to_raise(proc)) == ""
