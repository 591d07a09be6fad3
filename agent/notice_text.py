"""What the employee reads when their own copy raised an alert: the words, in Chinese or English.

The notice says what was recorded and why (the file's name, its level, where it went, the
severity) and then the firm's own text from config (how to declare a business need). Every piece
taken from the event is made inert before it is shown: control characters become visible escapes
(a file name cannot start a new line of the notice) and names are cut to a bounded length;
`markup_escaped` makes the body show as typed where the notification service reads markup
(a name like `<b>x</b>`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rules.events import Event
from rules.levels import LEVEL_LABELS

LANGUAGES = ("zh", "en")
MAX_NAME_CHARS = 120  # of a file, device or app name as shown

_SEVERITY = {
    "critical": ("严重", "critical"),
    "high": ("高", "high"),
    "medium": ("中", "medium"),
    "low": ("低", "low"),
    "info": ("提示", "info"),
}

# where the file went, by egress kind (rules.fields.EGRESS_KINDS): (zh, en), {place} filled in
_ACTIONS = {
    "removable": ("复制到了U盘或移动硬盘（{place}）", "copied to removable media ({place})"),
    "folder": ("写入了外发目录（{place}）", "written to an egress folder ({place})"),
    "sync": ("放入了云盘同步目录（{place}）", "put in a cloud-drive sync folder ({place})"),
    "share": ("复制到了网络共享（{place}）", "copied to a network share ({place})"),
    "im": ("通过 {place} 发送或接收", "sent or received through {place}"),
    "phone": ("复制到了手机（{place}）", "copied to a phone ({place})"),
    "printer": ("打印到了打印机（{place}）", "printed on {place}"),
}

_TITLE = ("密卫：已记录一次商密外发", "MiWei: a transfer of protected data was recorded")


@dataclass(frozen=True)
class NoticeText:
    summary: str  # plain text: the notification's title
    body: str  # plain text: escape it for a service that reads markup (agent.desktop does)


def notice_text(event: Event, language: str, firm_text: str) -> NoticeText:
    """The notice of one event, in `language` ("zh" or "en")."""
    zh = language == "zh"
    name = shown(os.path.basename(event.path or "") or "?")
    what = _what(event, zh)
    kind = event.egress or "folder"
    action = _ACTIONS.get(kind, _ACTIONS["folder"])[0 if zh else 1].format(place=shown(_place(event, zh)))
    severity = _SEVERITY.get(event.severity or "", (event.severity or "", event.severity or ""))[0 if zh else 1]
    rules = ", ".join(shown(r) for r in event.rule_ids[:3])
    if zh:
        lines = [f"已记录：您将{what}《{name}》{action}。", f"告警级别：{severity}；规则：{rules}。"]
    else:
        lines = [f"Recorded: the {what} “{name}” was {action}.", f"Alert severity: {severity}; rules: {rules}."]
    return _finish(zh, lines, firm_text)


def folded_text(count: int, last: Event, language: str, firm_text: str) -> NoticeText:
    """One notice for `count` more events of the same user that were not shown one by one."""
    zh = language == "zh"
    name = shown(os.path.basename(last.path or "") or "?")
    if zh:
        lines = [f"另有 {count} 个文件的外发已记录（最近一个：《{name}》）。"]
    else:
        lines = [f"And {count} more transfers were recorded (the last: “{name}”)."]
    return _finish(zh, lines, firm_text)


def _finish(zh: bool, lines: list[str], firm_text: str) -> NoticeText:
    if firm_text.strip():
        lines.append(firm_text.strip())
    return NoticeText(summary=_TITLE[0 if zh else 1], body="\n".join(lines))


def _what(event: Event, zh: bool) -> str:
    if event.level in LEVEL_LABELS:
        label_zh, label_en = LEVEL_LABELS[event.level]
        return f"{label_zh}文件" if zh else f"{label_en} file"
    if any(d.detector == "trade_secret_marking" for d in event.detections):
        return "标有商业秘密标记的文件" if zh else "file marked as a trade secret"
    return "文件" if zh else "file"


def _place(event: Event, zh: bool) -> str:
    """The device, app or folder the file went to, as the employee would name it."""
    details = event.details if isinstance(event.details, dict) else {}
    app = details.get("app") if isinstance(details.get("app"), str) else ""
    media = event.media
    if media is not None:
        device = " ".join(x for x in (media.vendor, media.model) if x) or media.label or media.mountpoint
        return f"{app}, {device}" if app else device
    if app:
        return app
    return os.path.dirname(event.path or "") or ("未知位置" if zh else "unknown place")


def shown(text: str) -> str:
    """`text` with control characters as visible escapes (\\n, \\x1b), cut to MAX_NAME_CHARS."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif (
            code < 0x20
            or code == 0x7F
            or 0x80 <= code < 0xA0
            or code in (0x2028, 0x2029, 0x202E, 0x2066, 0x2067, 0x2068)
        ):
            out.append(f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}")
        else:
            out.append(ch)
    joined = "".join(out)
    return joined if len(joined) <= MAX_NAME_CHARS else joined[: MAX_NAME_CHARS - 1] + "…"


def markup_escaped(text: str) -> str:
    """For the body of org.freedesktop.Notifications, which may be read as a subset of HTML."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )
