"""The employee's desktop notice without a desktop: the words (zh, en, hostile names), the session
found in a /proc of the test's making, the rate limit and its fold on a clock the test moves, the
config section, and the spool telling the notifier only of what it stored."""

from __future__ import annotations

import os
import threading
import time

import pytest

from agent import desktop
from agent.config import NoticeConfig, load_agent_config
from agent.notice import QUEUE_MAX, QUIET_S, WINDOW_S, Notifier
from agent.notice_text import folded_text, markup_escaped, notice_text, shown
from agent.spool import Spool
from rules.errors import InvalidInput
from rules.events import Detection, Event, Media


def _event(name="泵叶轮图纸.dwg", severity="critical", user="zhang", **fields) -> Event:
    fields.setdefault("level", "core")
    fields.setdefault("egress", "removable")
    fields.setdefault("media", Media("/media/zhang/KINGSTON", vendor="Kingston", model="DataTraveler 3.0"))
    return Event("egress.file", path=f"/media/zhang/KINGSTON/{name}", severity=severity, user=user,
                 rule_ids=("MW-EGRESS-CLASSIFIED",), **fields)  # fmt: skip


# --- the words -------------------------------------------------------------------------------


def test_the_chinese_notice_says_file_level_place_severity_and_the_firms_text():
    text = notice_text(_event(), "zh", "请在OA提交外发申请。")
    assert text.summary == "密卫：已记录一次商密外发"
    assert text.body.splitlines() == [
        "已记录：您将核心商业秘密文件《泵叶轮图纸.dwg》复制到了U盘或移动硬盘（Kingston DataTraveler 3.0）。",
        "告警级别：严重；规则：MW-EGRESS-CLASSIFIED。",
        "请在OA提交外发申请。",
    ]


def test_the_english_notice_names_the_app_of_an_im_folder_and_a_marked_file():
    event = _event("报价.docx", severity="high", level=None, media=None, egress="im", details={"app": "WeChat"},
                   detections=(Detection("trade_secret_marking", 1, "商业秘密"),))  # fmt: skip
    text = notice_text(event, "en", "")
    assert text.body.splitlines() == [
        "Recorded: the file marked as a trade secret “报价.docx” was sent or received through WeChat.",
        "Alert severity: high; rules: MW-EGRESS-CLASSIFIED.",
    ]


def test_a_hostile_name_stays_on_its_line_and_its_markup_is_escaped():
    name = "a\nb\x1b[31m\u202egpj.exe<b>&"
    body = notice_text(_event(name), "zh", "").body
    assert len(body.splitlines()) == 2  # the name started no line of its own
    assert "a\\nb\\x1b[31m\\u202egpj.exe<b>&" in body
    assert markup_escaped("<b>&'\"") == "&lt;b&gt;&amp;&apos;&quot;"
    assert len(shown("x" * 1000)) == 120


def test_the_fold_counts_what_was_not_shown_one_by_one():
    assert (
        folded_text(17, _event("图纸19.dwg"), "zh", "").body
        == "另有 17 个文件的外发已记录（最近一个：《图纸19.dwg》）。"
    )
    assert folded_text(2, _event("x.dwg"), "en", "").body == "And 2 more transfers were recorded (the last: “x.dwg”)."


def test_gvariant_strings_are_plain_ascii_with_every_risky_character_escaped():
    literal = desktop.gvariant_string("a\"b\\c'\n😀<")
    assert literal == '"a\\u0022b\\u005cc\\u0027\\u000a\\U0001f600\\u003c"'
    assert literal.isascii()


def test_the_language_follows_the_locale_and_falls_back_when_none_is_stated():
    assert desktop.language_of("zh_CN.UTF-8", "en") == "zh"
    assert desktop.language_of("zh_TW:en", "en") == "zh"
    assert desktop.language_of("en_US.UTF-8", "zh") == "en"
    assert desktop.language_of("C.UTF-8", "zh") == "en"
    assert desktop.language_of("", "zh") == "zh"


# --- the session ------------------------------------------------------------------------------


def _proc(tmp_path, pid: int, uid: int, env: dict[str, str]):
    folder = tmp_path / "proc" / str(pid)
    folder.mkdir(parents=True)
    (folder / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()) + b"\0")
    os.chown(folder, uid, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="the fake /proc's owners are set with chown")
def test_the_session_is_a_process_with_a_bus_and_a_display_and_its_locale(tmp_path):
    _proc(tmp_path, 10, 0, {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/0/bus"})  # no display: a login shell
    _proc(tmp_path, 11, 4242, {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x", "DISPLAY": ":0"})  # someone else's
    assert desktop.find_session("root", proc=str(tmp_path / "proc"), root=str(tmp_path)) is None
    _proc(tmp_path, 12, 0, {"DBUS_SESSION_BUS_ADDRESS": "tcp:host=evil,port=1;unix:path=/run/user/0/bus,guid=ab",
                            "WAYLAND_DISPLAY": "wayland-0", "LANG": "zh_CN.UTF-8", "LC_MESSAGES": "en_US.UTF-8"})  # fmt: skip
    session = desktop.find_session("root", proc=str(tmp_path / "proc"), root=str(tmp_path))
    assert session == desktop.Session(0, 0, "root", "unix:path=/run/user/0/bus,guid=ab", "en_US.UTF-8")


@pytest.mark.skipif(os.geteuid() != 0, reason="the fake /proc's owners are set with chown")
def test_without_a_locale_in_the_session_the_users_locale_conf_says_and_a_link_is_not_followed(tmp_path):
    _proc(tmp_path, 12, 0, {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/b", "DISPLAY": ":0"})
    config = tmp_path / "root" / ".config"
    config.mkdir(parents=True)
    (tmp_path / "elsewhere").write_text('LANG="zh_CN.UTF-8"\n')
    (config / "locale.conf").symlink_to(tmp_path / "elsewhere")
    find = lambda: desktop.find_session("root", proc=str(tmp_path / "proc"), root=str(tmp_path))  # noqa: E731
    assert find().locale == ""
    (config / "locale.conf").unlink()
    (config / "locale.conf").write_text('LANG="zh_CN.UTF-8"\n')
    assert find().locale == "zh_CN.UTF-8"


# --- the notifier -----------------------------------------------------------------------------


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Desktop:
    """Records what would be shown; `fail` makes every call fail."""

    def __init__(self, fail: str | None = None):
        self.shown: list[tuple[str, str, bool]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def find(self, user):
        return desktop.Session(1000, 1000, user, "unix:path=/b", "zh_CN.UTF-8") if user != "nobody-logged-in" else None

    def show(self, session, app, summary, body, tools, timeout_s, markup):
        if self.fail:
            raise desktop.NoticeFailed(self.fail)
        with self.lock:
            self.shown.append((session.user, body, markup))

    def capabilities(self, session, tools, timeout_s):
        return frozenset({"body"})


def _notifier(fake: _Desktop, clock=None, **config) -> Notifier:
    config.setdefault("severities", ("critical", "high"))
    return Notifier(NoticeConfig(**config), fake.find, fake.show, fake.capabilities, tools={"gdbus": "/usr/bin/gdbus"},
                    clock=clock or time.monotonic)  # fmt: skip


def _until(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_burst_gives_the_limit_then_one_fold_and_at_most_one_fold_a_minute():
    fake, clock = _Desktop(), _Clock()
    notifier = _notifier(fake, clock, per_minute=3)
    notifier.start()
    try:
        notifier.offer([_event(f"图纸{i}.dwg") for i in range(20)])
        _until(lambda: len(fake.shown) == 3)
        time.sleep(0.3)
        assert len(fake.shown) == 3  # the rest wait for the burst to end
        clock.now += QUIET_S
        _until(lambda: len(fake.shown) == 4)
        assert "另有 17 个文件" in fake.shown[3][1] and "《图纸19.dwg》" in fake.shown[3][1]
        clock.now += 5
        notifier.offer([_event(f"又{i}.dwg") for i in range(5)])  # same minute: the three are used
        clock.now += QUIET_S + 1
        time.sleep(0.5)
        assert len(fake.shown) == 4  # one fold a minute at most
        clock.now += WINDOW_S
        _until(lambda: len(fake.shown) == 5)
        assert "另有 5 个文件" in fake.shown[4][1]
        assert all(markup is False for _, _, markup in fake.shown)  # the service said no body-markup
    finally:
        notifier.stop()


def test_only_listed_severities_of_egress_files_with_a_user_are_shown_and_users_are_counted_apart():
    fake = _Desktop()
    notifier = _notifier(fake, severities=("critical",), per_minute=1)
    notifier.start()
    try:
        notifier.offer([
            _event("high.dwg", severity="high"), _event("none.dwg", severity=None), _event("anon.dwg", user=""),
            Event("file.modified", path="/rnd/x.dwg", severity="critical", user="zhang"),
            _event("zhang.dwg"), _event("li.dwg", user="li"), _event("ghost.dwg", user="nobody-logged-in"),
        ])  # fmt: skip
        _until(lambda: len(fake.shown) == 2)
        time.sleep(0.3)
        assert sorted((user, "dwg" in body) for user, body, _ in fake.shown) == [("li", True), ("zhang", True)]
        assert "zhang.dwg" in dict((u, b) for u, b, _ in fake.shown)["zhang"]
    finally:
        notifier.stop()


def test_off_by_default_nothing_is_queued_and_no_thread_starts():
    fake = _Desktop()
    notifier = Notifier(NoticeConfig(), fake.find, fake.show, fake.capabilities, tools={})
    notifier.start()
    notifier.offer([_event()])
    assert not notifier.enabled and notifier._thread.ident is None and notifier._queue.qsize() == 0


@pytest.mark.timeout(60)
def test_offer_never_blocks_when_the_queue_is_full():
    notifier = _notifier(_Desktop())  # not started: nothing drains the queue, so a blocking put hangs (the timeout)
    notifier.offer([_event(f"{i}.dwg") for i in range(QUEUE_MAX + 50)])
    assert notifier.dropped == 50


def test_a_failing_service_is_logged_once_per_user_and_reason_and_the_thread_goes_on():
    from loguru import logger

    fake = _Desktop(fail="the notification service did not answer within 5s")
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    notifier = _notifier(fake, per_minute=10)
    notifier.start()
    try:
        notifier.offer([_event(f"{i}.dwg") for i in range(5)])
        _until(lambda: notifier._queue.qsize() == 0)
        time.sleep(0.3)
        fake.fail = None
        notifier.offer([_event("after.dwg")])
        _until(lambda: len(fake.shown) == 1)
    finally:
        notifier.stop()
        logger.remove(sink)
    assert len([w for w in warnings if "desktop notice not shown" in w]) == 1


# --- the spool tells the notifier what it stored ----------------------------------------------


def test_the_spool_hands_over_events_after_commit_and_a_failing_listener_changes_nothing(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    seen: list[tuple[str, int]] = []

    def listener(events):
        seen.append((events[0].id, spool.depth()))  # already stored when told
        raise RuntimeError("a listener's bug")

    spool.on_stored = listener
    event = _event()
    spool.put([event])
    spool.put([], state={"k": "v"})  # no events: nobody told
    assert seen == [(event.id, 1)]
    assert spool.depth() == 1
    spool.close()


# --- the config section -----------------------------------------------------------------------


def _config(tmp_path, section: str):
    path = tmp_path / "config.yaml"
    path.write_text(
        "agent:\n  server_url: http://127.0.0.1:8765\n  enroll_secret: a-long-enough-secret-for-tests-0123\n"
        f"  state_dir: {tmp_path / 'state'}\n  classified: []\n{section}",
        encoding="utf-8",
    )
    return load_agent_config(str(path))


def test_notify_user_is_off_by_default_and_read_when_set(tmp_path):
    assert _config(tmp_path, "").notify_user == NoticeConfig()
    assert NoticeConfig().severities == ()
    config = _config(tmp_path, "  notify_user:\n    severities: [critical, high, high]\n    per_minute: 5\n"
                               "    language: en\n    text_zh: 请申请\n    text_en: Please ask\n")  # fmt: skip
    assert config.notify_user == NoticeConfig(("critical", "high"), 5, "en", "zh", "请申请", "Please ask", 5.0)


def test_notify_user_errors_are_located(tmp_path):
    with pytest.raises(InvalidInput) as caught:
        _config(tmp_path, "  notify_user:\n    severities: [urgent]\n    per_minute: 0\n    langauge: zh\n")
    text = str(caught.value)
    assert "agent.notify_user.severities[0]" in text and "agent.notify_user.per_minute" in text
    assert "agent.notify_user.langauge" in text and "language" in text  # did you mean
