"""Explanations a security officer reads without the rule file, built from the rule and the evidence.

Every alert says which rule fired, which conditions held with which values, and what happened
(the file, where it went, the device, the user, the host, the local time). Nothing here is written
per rule: the sentences come from the rule's title, conditions and thresholds and from the events.
Each explanation is kept in both languages (`bilingual`): the English sentences, a line holding
ZH_MARK, then the same in Chinese (rules/explain_zh.py), a summary line per category first. The
console shows the viewer's part, a notification the firm's (`in_language`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from rules import explain_zh as zh
from rules.engine import Verdict, show_value
from rules.events import EVENT_TYPES, Detection, Event
from rules.fields import BLIND_SPOTS
from rules.levels import LEVEL_LABELS
from rules.model import BY_LEVEL, Condition, CorrelationRule, EventRule, Threshold
from rules.units import format_bytes
from rules.worktime import WorkTime

MAX_LISTED = 3  # places, devices, files named in a correlation's explanation
ZH_MARK = "—— 中文 ——"  # the line between the English and the Chinese of an explanation


def bilingual(english: str, chinese: str) -> str:
    """The explanation as kept: English, a line holding ZH_MARK, Chinese. Names in it are `plain`
    (no line breaks), so no agent-sent text can forge the mark's line."""
    return f"{english}\n{ZH_MARK}\n{chinese}"


def in_language(text: str, lang: str) -> str:
    """The part of a kept explanation in `lang` ("zh" or "en"). An explanation kept before there
    were two parts (English lines, then one Chinese line per category) is split by its lines: a
    line that starts with a Chinese character is the Chinese one."""
    english, mark, chinese = text.partition(f"\n{ZH_MARK}\n")
    if mark:
        return chinese if lang == "zh" else english
    lines = text.split("\n")
    said = [x for x in lines if _starts_chinese(x) == (lang == "zh")]
    return "\n".join(said) if said else text


def _starts_chinese(line: str) -> bool:
    return bool(line) and "\u4e00" <= line[0] <= "\u9fff"


_HOW = {"exact": "an exact copy", "archive": "inside an archive", "partial": "an edited copy"}
_FILE_VERBS = {
    "file.created": "created",
    "file.modified": "changed",
    "file.deleted": "deleted",
    "file.opened": "opened",
}
_FILE_VERBS_ZH = {
    "file.created": "创建",
    "file.modified": "修改",
    "file.deleted": "删除",
    "file.opened": "打开",
    "file.moved": "移动",
}


# --- small formatters -----------------------------------------------------------------------------

_SHOWN_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_INVISIBLE = frozenset(("Cc", "Cf", "Zl", "Zp"))  # controls, bidi and zero-width marks, line breaks


def plain(name: str | None) -> str | None:
    """A name an agent sent (a file, a label, a user), safe to put in a sentence someone reads.

    File and volume names are chosen by whoever writes them: a name holding a newline could add a
    line that looks like MiWei's own ("Rule ... did not match"), and a right-to-left override can
    make "gpj.exe" read as "exe.jpg". Such characters are shown as escapes (\\n, \\u202e); every
    other character, Chinese included, stays as it is.
    """
    if not name or name.isprintable():
        return name
    out = []
    for ch in name:
        if unicodedata.category(ch) not in _INVISIBLE:
            out.append(ch)
        elif ch in _SHOWN_ESCAPES:
            out.append(_SHOWN_ESCAPES[ch])
        else:
            out.append(
                f"\\x{ord(ch):02x}"
                if ord(ch) < 0x100
                else f"\\u{ord(ch):04x}"
                if ord(ch) < 0x10000
                else f"\\U{ord(ch):08x}"
            )
    return "".join(out)


_MEDIA_NAMES = ("mountpoint", "device", "fstype", "label", "serial", "vendor", "model")
_EVENT_NAMES = ("host", "user", "path", "dest_path", "source_path", "register_entry", "error", "file_type")


def _plain_event(event: Event) -> Event:
    """The event with every agent-sent name made `plain`, for the sentences below: the event itself
    when every name is plain already (the collector explains every correlation hit, and copying
    the event with dataclasses.replace was most of that), else a copy with the names changed."""
    media = event.media
    if media is not None and not all(_is_plain(getattr(media, k)) for k in _MEDIA_NAMES):
        media = replace(media, **{k: plain(getattr(media, k)) for k in _MEDIA_NAMES})
    changes = {k: plain(getattr(event, k)) for k in _EVENT_NAMES if not _is_plain(getattr(event, k))}
    if media is not event.media:
        changes["media"] = media
    return event.replaced(**changes) if changes else event


def _is_plain(name: str | None) -> bool:
    """plain(name) is name itself."""
    return not name or name.isprintable()


def local_time(ts: str | datetime, worktime: WorkTime, with_date: bool = True) -> str:
    """A moment in the firm's time zone, as the officer's wall clock shows it: 2026-03-02 16:59:00 CST."""
    try:
        if isinstance(ts, datetime):
            moment = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(worktime.zone())
        else:
            moment = worktime.local(ts)
    except (ValueError, OverflowError):
        return str(ts)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if with_date else "%H:%M:%S")


CHINA_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"})


def local_time_zh(ts: str | datetime, worktime: WorkTime, with_date: bool = True) -> str:
    """local_time for a Chinese sentence: 2026-03-02 16:59:00（北京时间）; another zone by its abbreviation."""
    shown = local_time(ts, worktime, with_date)
    if not with_date:
        return shown
    stamp, _, abbreviation = shown.rpartition(" ")
    if not stamp or not abbreviation:
        return shown
    return f"{stamp}（北京时间）" if worktime.timezone in CHINA_ZONES else f"{stamp}（{abbreviation}）"


def duration(seconds: float) -> str:
    """600 -> '10 min', 90 -> '90 s', 7200 -> '2 h', 86400 -> '1 d'."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:g} s"


def _quantity(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _listing(items: list[str]) -> str:
    shown = items[:MAX_LISTED]
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return "; ".join(shown) + more


# --- what happened, for one event -----------------------------------------------------------------


# where a file went, by the kind of egress place: without its app, and with it ({app})
EGRESS_PLACES = {
    "sync": ("a cloud-drive folder", "the cloud-drive folder of {app}"),
    "share": ("a network share", "the network share {app}"),
    "im": ("the file folder of an IM client", "the file folder of {app} (sent or received through {app})"),
    "phone": ("a phone", "the phone {app}"),
    "printer": ("a printer", "the printer {app}"),
}
EGRESS_PLACES_ZH = {
    "sync": ("网盘同步目录", "{app}网盘同步目录"),
    "share": ("网络共享", "网络共享 {app}"),
    "im": ("即时通讯软件的文件目录", "{app}的文件目录（经{app}收发）"),
    "phone": ("手机", "手机 {app}"),
    "printer": ("打印机", "打印机 {app}"),
}


def _app(event: Event) -> str | None:
    """The application or device behind the place (details.app), made plain."""
    app = event.details.get("app") if isinstance(event.details, dict) else None
    return plain(app) if isinstance(app, str) and app else None


def _place(event: Event, places: dict[str, tuple[str, str]], folder: str) -> str:
    without, with_app = places.get(event.egress or "", (folder, folder))
    app = _app(event)
    return with_app.format(app=app) if app else without


def destination(event: Event) -> str:
    """Where an egress event's file went: the device with its names, or the egress place."""
    media = event.media
    if media is None or event.egress in ("phone", "share") and _app(event):
        return _place(event, EGRESS_PLACES, "an egress folder")
    device = " ".join(x for x in (media.vendor, media.model) if x) or media.device or "unknown device"
    details = ", ".join(
        x
        for x in (
            f"label '{media.label}'" if media.label else "",
            f"serial {media.serial}" if media.serial else f"volume {plain(media.volume_id)}" if media.volume_id else "",
            media.fstype,
        )
        if x
    )
    return f"removable media {device} mounted at {media.mountpoint}" + (f" ({details})" if details else "")


def device_name(event: Event) -> str:
    """The short name of the place, for listing several: 'Kingston DataTraveler 3.0 (serial 60A4...)'."""
    media = event.media
    if media is None:
        return destination(event)
    device = " ".join(x for x in (media.vendor, media.model) if x) or media.label or media.device or media.mountpoint
    return f"{device} (serial {media.serial})" if media.serial else device


def _device_zh(event: Event) -> str:
    """The device's names in Chinese words: 'Kingston DataTraveler 3.0（序列号 60A4…，卷标 KINGSTON）'."""
    media = event.media
    if media is None:
        return ""
    device = " ".join(x for x in (media.vendor, media.model) if x) or media.device or "未知设备"
    details = "，".join(
        x for x in (f"序列号 {media.serial}" if media.serial else "", f"卷标 {media.label}" if media.label else "") if x
    )
    return f"{device}（{details}）" if details else device


def _place_patterns() -> list[tuple[re.Pattern, str]]:
    """device_name's English for the egress places (EGRESS_PLACES), read back into their Chinese."""
    found = []
    for kind, english in EGRESS_PLACES.items():
        chinese = EGRESS_PLACES_ZH[kind]
        found.append((re.compile(re.escape(english[0]) + "$"), chinese[0]))
        pattern = (
            re.escape(english[1]).replace(re.escape("{app}"), "(?P<app>.+?)", 1).replace(re.escape("{app}"), "(?P=app)")
        )
        found.append((re.compile(pattern + "$"), chinese[1]))
    return found


def place_zh(place: str) -> str:
    """A place as device_name says it (kept with a correlation's hit, or an incident's destination),
    in Chinese words: 'Kingston DataTraveler 3.0 (serial 60A4…)' -> '…（序列号 60A4…）'."""
    device, sep, serial = place.partition(" (serial ")
    if sep and serial.endswith(")"):
        return f"{device}（序列号 {serial[:-1]}）"
    for pattern, chinese in _PLACES_ZH:
        found = pattern.match(place)
        if found:
            return chinese.format(**found.groupdict())
    if place.startswith(("the ", "a ", "an ", "removable media ")):  # another place said in English
        return "外发位置"
    return place


_place_zh = place_zh


def _extension(raw_path: str | None) -> str | None:
    stem, dot, extension = (raw_path or "").replace("\\", "/").rsplit("/", 1)[-1].rpartition(".")
    return plain(extension) if dot and stem and extension else None


def describe_event_zh(raw: Event, when: str) -> str:
    """describe_event in Chinese."""
    event = _plain_event(raw)
    destination = _destination_zh(event) if event.type == "egress.file" else ""
    if event.type == "egress.file" and event.media is not None and destination.startswith("移动存储介质（"):
        destination = f"移动存储介质 {_device_zh(event)}，挂载点 {event.media.mountpoint}"
    return zh.describe_event(event, when, destination, _device_zh(event), _app(event), _extension(raw.path))


def _destination_zh(event: Event) -> str:
    if event.media is None or event.egress in ("phone", "share") and _app(event):
        return _place(event, EGRESS_PLACES_ZH, "外发目录")
    return f"移动存储介质（挂载点 {event.media.mountpoint}）"


# the agent keeps removed files and earlier versions traceable: say so when the match is one
_SOURCE_STATES = {"deleted": "a since deleted or moved ", "previous-version": "an earlier version of "}


def _level_text(event: Event) -> str:
    zh, en = LEVEL_LABELS.get(event.level or "", (event.level, event.level))
    entry = f", register entry '{event.register_entry}'" if event.register_entry else ""
    return f"level {event.level}: {en}{entry}"


def _content(event: Event) -> str:
    if event.level and event.source_path:
        method = event.match.method if event.match else "exact"
        how = _HOW.get(method, "a copy")
        if how == _HOW["partial"] and (event.details or {}).get("lineage") == "bytes":
            how += " (traced by its bytes)"
        if (encoding := zh.written_out(event)) is not None:  # base64 of a drawing in a .txt
            how = f"{how if method == 'partial' else 'a copy'} written out as {encoding[0]} text"
            if event.file_type in zh.MAIL_FILE_TYPES:
                how = f"a saved email holding {how}"
        elif (host := zh.embedded_in(event, method)) is not None:
            copy = how if method == "partial" else "a copy"
            how = f"a PDF with {copy} attached" if host == "pdf" else f"a document with {copy} embedded"
        elif zh.attached(event, method):
            how = f"a saved email with {how if method == 'partial' else 'a copy'} attached"
        state = _SOURCE_STATES.get((event.details or {}).get("source_state"), "")
        return f" is {how} of {state}classified file {event.source_path} ({_level_text(event)})"
    if event.level:
        return f" holds classified content ({_level_text(event)})"
    return ""


def _renamed(event: Event, raw_path: str | None) -> str:
    """A type hidden by its name (a drawing saved as .jpg), said in words. The event's names are
    already plain; the extension is cut from the path as sent (plain's escapes hold backslashes,
    which a Windows path would split on) and made plain itself."""
    if not event.type_mismatch or not event.file_type:
        return ""
    stem, dot, extension = (raw_path or "").replace("\\", "/").rsplit("/", 1)[-1].rpartition(".")
    ending = f"ends in .{plain(extension)}" if dot and stem and extension else "has no extension"
    return f"; its content is a {event.file_type} file although its name {ending}"


def _detections(event: Event) -> str:
    found = [f"{d.count} × {d.detector}" for d in event.detections if d.count and d.detector not in BLIND_SPOTS]
    blind = [_blind_spot(d) for d in event.detections if d.count and d.detector in BLIND_SPOTS]
    text = f"; content inspection found {', '.join(found)}" if found else ""
    return text + (f"; the agent could not see into it: {'; '.join(blind)}" if blind else "")


def _blind_spot(d: Detection) -> str:
    """A blind spot with its reason (the detection's sample, sent by the agent: made plain)."""
    return f"{d.detector} ({plain(d.sample)})" if d.sample else d.detector


def describe_event(event: Event, when: str | None = None) -> str:
    """One sentence: what the event says happened, with every name it carries."""
    raw_path, event = event.path, _plain_event(event)
    path = event.path or "(unknown path)"
    if event.type == "egress.file":
        what = f"{path} written to {destination(event)}{_content(event)}{_renamed(event, raw_path)}{_detections(event)}"
        if event.error:
            what += f"; the agent could not read it: {event.error}"
    elif event.type == "file.moved":
        what = f"{path} moved to {event.dest_path or '(unknown)'} in a classified folder{_content(event)}"
    elif event.type in _FILE_VERBS:
        what = f"{path} {_FILE_VERBS[event.type]} in a classified folder{_content(event)}{_renamed(event, raw_path)}{_detections(event)}"
    elif event.type == "classified.read":
        process = (event.details or {}).get("process") if isinstance(event.details, dict) else None
        exe = plain(process.get("exe")) if isinstance(process, dict) and isinstance(process.get("exe"), str) else None
        reader = (_app(event) or "a network application") + (f" ({exe})" if exe else "")
        level = f" ({_level_text(event)})" if event.level else ""
        what = f"{reader} read {path}, a file in a classified folder{level}"
    elif event.type in ("media.mounted", "media.unmounted") and event.media is not None:
        verb = "mounted" if event.type == "media.mounted" else "unmounted"
        what = destination(event).replace(" mounted at ", f" {verb} at ", 1)
    else:
        what = f"the agent reported {event.type} ({EVENT_TYPES.get(event.type, 'an event')})"
        if event.error:
            what += f": {event.error}"
    return f"{what}, by user {event.user or '?'} on host {event.host or '?'} at {when or event.ts}"


# how a register item is named in a sentence: 核心商密《泵叶轮图纸》
_LEVEL_SHORT_ZH = {"core": "核心商密", "important": "重要商密", "general": "一般商密", "internal": "内部资料"}


def _register_zh(event: Event, zh_level: str) -> str:
    """The level and the register item's name (and its owner, when the central register gave one)."""
    if not event.register_entry:
        return zh_level
    owner = plain(str((event.details or {}).get("register_owner") or ""))
    named = f"{_LEVEL_SHORT_ZH.get(event.level or '', zh_level)}《{event.register_entry}》"
    return f"{named}（责任人 {owner}）" if owner else named


def _source_zh(event: Event, zh_level: str) -> str:
    """The copied file: its classified original when known, else only that it is one (never `?`)."""
    named = _register_zh(event, zh_level)
    return f"{named}文件 {event.source_path} " if event.source_path else f"一个{named}文件"


def chinese_line(category: str, event: Event) -> str:
    """The category's sentence in Chinese, filled from the event."""
    event = _plain_event(event)
    user, host, path = event.user or "?", event.host or "?", event.path or "?"
    zh_level = LEVEL_LABELS.get(event.level or "", ("涉密", ""))[0]
    device = _device_zh(event) if event.media else "?"
    lines = {
        "classified-egress": f"用户 {user} 在主机 {host} 上把{_source_zh(event, zh_level)}复制到{_destination_zh(event)}：{path}。",
        "marked-egress": f"用户 {user} 在主机 {host} 上把带有商业秘密标识的文件 {path} 写入{_destination_zh(event)}。",
        "state-secret-marking": f"主机 {host} 上的文件 {path} 带有国家秘密标志（★），用户 {user}。",
        "personal-data-egress": f"用户 {user} 在主机 {host} 上把含有大量个人信息的文件 {path} 写入{_destination_zh(event)}。",
        "off-hours": f"用户 {user} 在非工作时间于主机 {host} 上{_FILE_VERBS_ZH.get(event.type, '操作')}了{zh_level}文件 {path}。",
        "unknown-device": f"主机 {host} 上挂载了不在允许清单中的移动存储介质 {device}，用户 {user}。",
        "agent-tamper": f"主机 {host} 上的监控代理被停止或篡改（{event.type}），用户 {user}。",
        "agent-health": f"主机 {host} 上的监控代理运行异常：{zh.EVENT_TYPES_ZH.get(event.type, event.type)}（{event.type}），用户 {user}。",
        "mass-deletion": f"用户 {user} 在主机 {host} 上删除或移动了涉密目录中的文件 {path}。",
        "uninspectable-egress": f"用户 {user} 在主机 {host} 上把无法检查内容的文件 {path} 写入{_destination_zh(event)}，是否含涉密内容未知。",
        "classified-read": f"用户 {user} 在主机 {host} 上用网络应用 {_app(event) or '?'} 读取了{zh_level}文件 {path}（可能正在上传或发送，读取本身不证明已外发）。",
    }
    return lines.get(category, f"主机 {host} 上用户 {user} 的操作触发了规则（{category}）。")


# --- one event rule -------------------------------------------------------------------------------


def explain_verdict(verdict: Verdict, event: Event, worktime: WorkTime, value_of: Callable[[str, Event], Any]) -> str:
    """The explanation of an event rule's alert: what happened, why the rule matched, the severity."""
    rule: EventRule = verdict.rule
    happened = describe_event(event, local_time(event.ts, worktime)) + "."  # the firm's clock; UTC stays in the API
    held = "; ".join(
        f"{r.condition.field} = {plain(show_value(r.condition.field, r.value))} ({r.condition.describe()})"
        for r in verdict.held
    )
    lines = [happened, f"Rule {rule.id} ({rule.title}) matched: {held}."]
    if rule.unless:
        lines.append(
            "None of its exceptions held: " + "; ".join(_unless(c, event, value_of) for c in rule.unless) + "."
        )
    lines.append(
        _severity_line(
            rule.severity,
            verdict.severity,
            event.level,
            rule.watchlist,
            verdict.watchlisted,
            value_of(rule.watchlist.field, event) if rule.watchlist else None,
        )
    )
    shown = lambda conditions, value: [  # noqa: E731
        (c.field, plain(show_value(c.field, value(c))), c) for c in conditions
    ]
    chinese = [
        chinese_line(rule.category, event),
        describe_event_zh(event, local_time_zh(event.ts, worktime)) + "。",
        zh.rule_line(
            rule.id,
            rule.title_in("zh"),
            [
                (f, v, c)
                for f, v, c in shown(
                    [r.condition for r in verdict.held],
                    lambda c: next(r.value for r in verdict.held if r.condition is c),
                )
            ],
        ),
    ]
    if rule.unless:
        chinese.append(zh.unless_line(shown(rule.unless, lambda c: value_of(c.field, event))))
    listed_value = value_of(rule.watchlist.field, event) if rule.watchlist else None
    chinese.append(
        zh.severity_line(
            rule.severity, verdict.severity, event.level, rule.watchlist, verdict.watchlisted, plain(str(listed_value))
        )
    )
    return bilingual("\n".join(lines), "\n".join(chinese))


def _unless(condition: Condition, event: Event, value_of: Callable[[str, Event], Any]) -> str:
    return f"{condition.field} = {plain(show_value(condition.field, value_of(condition.field, event)))} (not: {condition.describe()})"


def _severity_line(
    declared: str, severity: str | None, level: str | None, watchlist, listed: bool, listed_value: Any
) -> str:
    base = f"Severity {severity}"
    if declared == BY_LEVEL:
        base += f" (by level: {level or 'unclassified'})"
    if listed and watchlist is not None:
        base += (
            f", raised one step because {watchlist.field} {plain(str(listed_value))} is on watchlist '{watchlist.name}'"
        )
    return base + "."


# --- evidence kept for correlation ------------------------------------------------------------------


def hit_facts(event: Event, fields: dict[str, Any]) -> dict[str, Any]:
    """What a correlation's explanation needs from one event, kept beside its hit in the database."""
    event = _plain_event(event)
    return {
        "ts": event.ts,
        "type": event.type,
        "path": event.path,
        "size": event.size,
        "level": event.level,
        "place": device_name(event) if event.type.startswith(("egress.", "media.")) else None,
        "host": event.host,
        "user": event.user,
        "agent_id": event.agent_id,
        "fields": fields,
    }


@dataclass(frozen=True)
class Measure:
    """A threshold with the value it measured over the window and whether it held."""

    threshold: Threshold
    value: float
    held: bool


def measure(threshold: Threshold, facts: list[dict]) -> Measure:
    if threshold.kind == "count":
        value: float = len(facts)
    elif threshold.kind == "distinct":
        value = len({f["fields"].get(threshold.field) for f in facts} - {None})
    else:
        value = sum(float(v) for f in facts if isinstance(v := f["fields"].get(threshold.field), (int, float)))
    return Measure(threshold, value, all(t.holds(value) for t in threshold.tests))


def _subject_of(types: frozenset[str], classified: bool, places: frozenset[str]) -> tuple[str, str]:
    """The noun for what was counted, and what happened to it: ('classified file', 'written to ...')."""
    kind = "classified " if classified else ""
    if types <= {"egress.file"}:
        return f"{kind}file", "written to " + (_listing(sorted(places)) if places else "egress places")
    if types <= {"file.deleted", "file.moved"}:
        verbs = " or ".join(v for t, v in (("file.deleted", "deleted"), ("file.moved", "moved")) if t in types)
        return f"{kind}file", f"{verbs} in classified folders"
    if all(t.startswith("file.") for t in types):
        return f"{kind}file", "changed in classified folders"
    return "event", "of " + ", ".join(sorted(types))


def _who(group: dict[str, Any], facts: list[dict]) -> str:
    return _who_of(group, _two(f.get("user") for f in facts), _two(f.get("host") for f in facts))


def _who_of(group: dict[str, Any], users: tuple, hosts: tuple) -> str:
    """' by zhang.san on host pc-1': a user or host named when the group, or every hit, has one."""

    def one(key: str, seen: tuple) -> str | None:
        values = {group[key]} if key in group else set(seen)
        value = values.pop() if len(values) == 1 else None
        return plain(str(value)) if value not in (None, "") else None

    user, host = one("user", users), one("host", hosts)
    text = f" by {user}" if user else ""
    return text + (f" on host {host}" if host else "")


def _limit(threshold: Threshold, noun: str) -> str:
    """'20 files', '200 MB', '5 distinct media.serial', with the operator when it is not ≥."""
    parts = []
    for test in threshold.tests:
        if threshold.kind == "count":
            amount = _quantity(int(test.operand), noun) if float(test.operand).is_integer() else f"{test.shown} {noun}s"
        elif threshold.kind == "distinct":
            amount = f"{test.shown} distinct {threshold.field}"
        else:
            amount = test.shown if threshold.field == "size" else f"{test.shown} total {threshold.field}"
        prefix = {"gte": "", "gt": "more than ", "lte": "at most ", "lt": "fewer than ", "eq": "exactly "}.get(
            test.op, ""
        )
        parts.append(prefix + amount)
    return " and ".join(parts)


def _shown(m: Measure) -> str:
    if m.threshold.kind == "sum" and m.threshold.field == "size":
        return format_bytes(m.value)
    return f"{m.value:g}"


def _measure_name(t: Threshold) -> str:
    return {"count": "events", "distinct": f"distinct {t.field}", "sum": f"total {t.field}"}[t.kind]


@dataclass(frozen=True)
class BurstFacts:
    """What a threshold explanation reads from a burst's hits, without the hits: the collector keeps
    it as a running total beside the burst (server/correlation.py) so a growing burst is explained
    without reading all its hits again. `merged` of two parts equals `burst_facts` of all their hits.
    `users`/`hosts` hold at most two values (one value, or "several"); `last_user`/`last_host` are the
    latest hit's (by time, then `last_order`)."""

    count: int
    total: float  # sum of the hits' sizes
    first_ts: str
    last_ts: str
    last_order: int
    last_user: Any
    last_host: Any
    types: frozenset[str]
    classified: bool  # every hit has a level
    places: frozenset[str]
    users: tuple
    hosts: tuple
    distinct: tuple[tuple[str, frozenset], ...]  # (field, its values) per distinct threshold
    sums: tuple[tuple[str, float], ...]  # (field, its total) per sum threshold

    def merged(self, other: BurstFacts) -> BurstFacts:
        later = (other.last_ts, other.last_order) > (self.last_ts, self.last_order)
        tail = other if later else self
        mine, theirs = dict(self.distinct), dict(other.distinct)
        sums_a, sums_b = dict(self.sums), dict(other.sums)
        return BurstFacts(
            self.count + other.count,
            self.total + other.total,
            min(self.first_ts, other.first_ts),
            tail.last_ts,
            tail.last_order,
            tail.last_user,
            tail.last_host,
            self.types | other.types,
            self.classified and other.classified,
            self.places | other.places,
            _two(self.users + other.users),
            _two(self.hosts + other.hosts),
            tuple(
                (k, mine.get(k, frozenset()) | theirs.get(k, frozenset())) for k in sorted(mine.keys() | theirs.keys())
            ),
            tuple((k, sums_a.get(k, 0.0) + sums_b.get(k, 0.0)) for k in sorted(sums_a.keys() | sums_b.keys())),
        )


def burst_facts(rule: CorrelationRule, facts: list[dict], orders: list[int] | None = None) -> BurstFacts:
    """The BurstFacts of some hits' facts (`orders`: the hits' ids, breaking ties of time)."""
    ordered = sorted(zip(facts, orders or [0] * len(facts), strict=True), key=lambda p: (p[0]["ts"], p[1]))
    last, last_order = ordered[-1]
    return BurstFacts(
        len(facts),
        sum(f["size"] for f in facts if isinstance(f.get("size"), (int, float))),
        ordered[0][0]["ts"],
        last["ts"],
        last_order,
        last.get("user"),
        last.get("host"),
        frozenset(f["type"] for f in facts),
        all(f.get("level") for f in facts),
        frozenset(f["place"] for f in facts if f.get("place")),
        _two([f.get("user") for f in facts]),
        _two([f.get("host") for f in facts]),
        tuple(
            (t.field, frozenset({f["fields"].get(t.field) for f in facts} - {None}))
            for t in _by_field(rule, "distinct")
        ),
        tuple(
            (t.field, sum(float(v) for f in facts if isinstance(v := f["fields"].get(t.field), (int, float))))
            for t in _by_field(rule, "sum")
        ),
    )


def _by_field(rule: CorrelationRule, kind: str) -> list[Threshold]:
    return list({t.field: t for t in rule.thresholds if t.kind == kind}.values())


def _two(values: Iterable) -> tuple:
    """At most two of the values (the first two in repr order, so two parts merge to the same pair):
    enough to tell one value from several."""
    return tuple(sorted(set(values), key=repr)[:2])


def explain_threshold(
    rule: CorrelationRule,
    counted: list[EventRule],
    facts: list[dict],
    group: dict[str, Any],
    worktime: WorkTime,
    severity: str,
    listed: str | None = None,
) -> str:
    """'23 classified files (412 MB) written to ... by zhang.san between 18:02 and 18:09; threshold: 20 files in 10 min'."""
    return explain_burst(rule, counted, burst_facts(rule, facts), group, worktime, severity, listed)


def explain_burst(
    rule: CorrelationRule,
    counted: list[EventRule],
    burst: BurstFacts,
    group: dict[str, Any],
    worktime: WorkTime,
    severity: str,
    listed: str | None = None,
) -> str:
    """explain_threshold from a burst's BurstFacts."""
    noun, happened = _subject_of(burst.types, burst.classified, burst.places)
    total = burst.total
    size = f" ({format_bytes(total)})" if total else ""
    first, last = burst.first_ts, burst.last_ts
    span = f"between {local_time(first, worktime)} and {local_time(last, worktime, with_date=not _same_day(first, last, worktime))}"
    joiner = " or " if rule.require == "any" else " and "
    limits = joiner.join(_limit(t, noun.removeprefix("classified ")) for t in rule.thresholds)
    measures = [_measured(t, burst) for t in rule.thresholds]
    held = [f"{_measure_name(m.threshold)} = {_shown(m)} ({m.threshold.describe()})" for m in measures if m.held]
    missed = [f"{_measure_name(m.threshold)} = {_shown(m)} ({m.threshold.describe()})" for m in measures if not m.held]
    lines = [
        f"{_quantity(burst.count, noun)}{size} {happened}{_who_of(group, burst.users, burst.hosts)} {span}; threshold: {limits} in {duration(rule.window_s)}.",
        f"Rule {rule.id} ({rule.title}) counts {_rule_names(counted)}{_grouping(group)}; held: {'; '.join(held) or 'none'}"
        + (f"; not reached: {'; '.join(missed)}" if missed else "")
        + ".",
    ]
    lines.append(_correlation_severity(rule, severity, listed))
    places = sorted({_place_zh(p) for p in burst.places})
    chinese_joiner = " 或 " if rule.require == "any" else " 且 "
    held_zh = [
        f"{zh.measure_name(m.threshold)} = {_shown(m)}（{zh.threshold(m.threshold)}）" for m in measures if m.held
    ]
    missed_zh = [
        f"{zh.measure_name(m.threshold)} = {_shown(m)}（{zh.threshold(m.threshold)}）" for m in measures if not m.held
    ]
    chinese = [
        _chinese_burst(
            rule.category,
            burst.count,
            format_bytes(total) if total else "",
            group,
            [{"user": burst.last_user, "host": burst.last_host}],
            first,
            last,
            worktime,
        ),
        f"共 {burst.count} 个事件{f'（{format_bytes(total)}）' if total else ''}"
        + (f"，写入 {_listing_zh(places)}" if places else "")
        + f"；阈值：{chinese_joiner.join(zh.threshold(t) for t in rule.thresholds)}，时间窗口 {zh.duration(duration(rule.window_s))}。",
        f"规则 {rule.id}（{rule.title_in('zh')}）统计 {zh.rule_names(counted)}{zh.grouping(group, plain)}；已达到：{'；'.join(held_zh) or '无'}"
        + (f"；未达到：{'；'.join(missed_zh)}" if missed_zh else "")
        + "。",
        zh.correlation_severity(rule.severity, severity, rule.watchlist, plain(listed) if listed else None),
    ]
    return bilingual("\n".join(lines), "\n".join(chinese))


def _measured(threshold: Threshold, burst: BurstFacts) -> Measure:
    """measure() from a burst's BurstFacts."""
    if threshold.kind == "count":
        value: float = burst.count
    elif threshold.kind == "distinct":
        value = len(dict(burst.distinct).get(threshold.field, ()))
    else:
        value = dict(burst.sums).get(threshold.field, 0)
    return Measure(threshold, value, all(t.holds(value) for t in threshold.tests))


def _listing_zh(items: list[str]) -> str:
    more = f" 等 {len(items)} 处" if len(items) > MAX_LISTED else ""
    return "；".join(items[:MAX_LISTED]) + more


def explain_sequence(
    rule: CorrelationRule,
    steps: list[tuple[EventRule, dict]],
    group: dict[str, Any],
    worktime: WorkTime,
    severity: str,
    listed: str | None = None,
) -> str:
    """Each step of the sequence in order, with its time and file, and the window it had to fit in."""
    facts = [f for _, f in steps]
    first, last = facts[0]["ts"], facts[-1]["ts"]
    told = [
        f"{i}. {r.id} ({r.title}) at {local_time(f['ts'], worktime)}: {f.get('path') or f['type']}"
        + (f" to {f['place']}" if f.get("place") and f["type"].startswith("egress.") else "")
        for i, (r, f) in enumerate(steps, 1)
    ]
    spent = _seconds_between(first, last)
    lines = [
        f"{len(steps)} steps in order{_who(group, facts)} within {duration(spent) if spent else '0 s'}; window: {duration(rule.window_s)}.",
        *told,
        f"Rule {rule.id} ({rule.title}){_grouping(group)}.",
        _correlation_severity(rule, severity, listed),
    ]
    told_zh = [
        f"{i}. {r.id}（{r.title_in('zh')}），{local_time_zh(f['ts'], worktime)}：{f.get('path') or f['type']}"
        + (f"，写入 {_place_zh(f['place'])}" if f.get("place") and f["type"].startswith("egress.") else "")
        for i, (r, f) in enumerate(steps, 1)
    ]
    chinese = [
        _chinese_burst(rule.category, len(steps), "", group, facts, first, last, worktime, sequence=True),
        f"按顺序完成 {len(steps)} 个步骤，用时 {zh.duration(duration(spent) if spent else '0 s')}；时间窗口 {zh.duration(duration(rule.window_s))}。",
        *told_zh,
        f"规则 {rule.id}（{rule.title_in('zh')}）{zh.grouping(group, plain)}。",
        zh.correlation_severity(rule.severity, severity, rule.watchlist, plain(listed) if listed else None),
    ]
    return bilingual("\n".join(lines), "\n".join(chinese))


def explain_absence(
    rule: CorrelationRule,
    agent_id: str,
    hostname: str,
    last_seen: datetime,
    now: datetime,
    limit_s: float,
    from_config: bool,
    worktime: WorkTime,
    stopped_at: str | None = None,
) -> str:
    """No heartbeat; `stopped_at` (ISO, UTC): the agent said it stopped cleanly then, and did not come back."""
    silent = max((now - last_seen).total_seconds(), 0)
    hostname = plain(hostname) or "?"
    source = "server.agent_offline_s" if from_config else f"rule {rule.id}"
    english = [
        f"No heartbeat from the agent on host {hostname} (agent {agent_id}) since {local_time(last_seen, worktime)}: silent for {duration(round(silent))}; threshold: {duration(limit_s)} ({source}).",
        f"Rule {rule.id} ({rule.title}) fired; severity {rule.severity}.",
    ]
    chinese = [
        f"主机 {hostname} 上的监控代理自 {local_time_zh(last_seen, worktime)} 起没有心跳（已超过 {duration(limit_s)}）。",
        f"监控代理 {agent_id} 已静默 {zh.duration(duration(round(silent)))}；阈值：{zh.duration(duration(limit_s))}（{'server.agent_offline_s' if from_config else f'规则 {rule.id}'}）。",
        f"规则 {rule.id}（{rule.title_in('zh')}）已触发；严重程度：{zh.severity(rule.severity)}。",
    ]
    if stopped_at is not None:
        english.insert(
            0, f"The agent stopped cleanly at {stopped_at} and has not come back within server.agent_stopped_alert_s."
        )
        chinese.insert(0, f"监控代理于 {local_time_zh(stopped_at, worktime)} 正常停止，之后一直未恢复。")
    return bilingual("\n".join(english), "\n".join(chinese))


def _rule_names(rules: Iterable[EventRule]) -> str:
    return ", ".join(f"{r.id} ({r.title})" for r in rules)


def _grouping(group: dict[str, Any]) -> str:
    return (" grouped by " + ", ".join(f"{k} = {plain(str(v))}" for k, v in group.items())) if group else ""


def _correlation_severity(rule: CorrelationRule, severity: str, listed: str | None) -> str:
    line = f"Severity {severity}"
    if rule.severity == BY_LEVEL:
        line += " (by the highest level among the events)"
    if listed and rule.watchlist:
        line += (
            f", raised one step because {rule.watchlist.field} {plain(listed)} is on watchlist '{rule.watchlist.name}'"
        )
    return line + "."


def _chinese_burst(
    category: str,
    n: int,
    size: str,
    group: dict,
    facts: list[dict],
    first: str,
    last: str,
    worktime: WorkTime,
    sequence: bool = False,
) -> str:
    user = plain(str(group.get("user") or facts[-1].get("user") or "?"))
    host = plain(str(group.get("host") or facts[-1].get("host") or "?"))
    span = f"{local_time_zh(first, worktime)} 至 {local_time_zh(last, worktime, with_date=not _same_day(first, last, worktime))}"
    size_zh = f"（{size}）" if size else ""
    if sequence:
        return f"用户 {user} 在主机 {host} 上于 {span} 之间依次完成了 {n} 个步骤（{category}）。"
    if category == "bulk-egress":
        return f"用户 {user} 在主机 {host} 上于 {span} 之间向外发位置写入了 {n} 个涉密文件{size_zh}。"
    if category == "mass-deletion":
        return f"用户 {user} 在主机 {host} 上于 {span} 之间在涉密目录中删除或移动了 {n} 个文件。"
    return f"用户 {user} 在主机 {host} 上于 {span} 之间触发了 {n} 次相关事件（{category}）。"


def _seconds_between(first: str, last: str) -> float:
    try:
        a = datetime.fromisoformat(first.replace("Z", "+00:00"))
        b = datetime.fromisoformat(last.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max((b - a).total_seconds(), 0.0)


def _same_day(first: str, last: str, worktime: WorkTime) -> bool:
    try:
        return worktime.local(first).date() == worktime.local(last).date()
    except (ValueError, OverflowError):
        return False


_PLACES_ZH = _place_patterns()
