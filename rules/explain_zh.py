"""The explanations in Chinese, sentence for sentence beside the English of rules/explain.py.

An alert keeps both (rules/explain.py `bilingual`): the console shows the viewer's language, a
notification the firm's. The sentences are built from the same rule, conditions, thresholds and
events as the English ones; names an agent sent stay as they are (made `plain` by the caller).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from rules.events import Event
from rules.fields import BLIND_SPOTS
from rules.levels import LEVEL_LABELS
from rules.model import BY_LEVEL, Condition, Threshold

SEVERITY_ZH = {"critical": "严重", "high": "高", "medium": "中", "low": "低", "info": "提示"}
EVENT_TYPES_ZH = {
    "file.created": "涉密目录中出现了一个文件",
    "file.modified": "涉密目录中的文件被修改",
    "file.moved": "涉密目录中的文件被重命名或移动",
    "file.deleted": "涉密目录中的文件被删除",
    "file.opened": "涉密目录中的文件被打开",
    "classified.read": "网络应用（浏览器、即时通讯、邮件、网盘或传输工具）读取了涉密目录中的文件",
    "egress.file": "在外发位置发现一个完整文件",
    "media.mounted": "挂载了移动存储介质",
    "media.unmounted": "卸载了移动存储介质",
    "agent.started": "监控代理启动",
    "agent.stopped": "监控代理正常停止",
    "agent.error": "监控代理未能完成应做的事",
    "agent.overflow": "文件事件丢失，已开始重新扫描",
    "agent.gap": "监控代理的事件链出现缺口",
    "agent.tamper": "监控代理的配置或规则在本机被改动，或其事件链被发现断裂",
    "agent.clock_skew": "监控代理的时钟与服务器不一致",
    "agent.limit": "监控代理超出了 CPU 或内存上限（agent.limits）",
    "agent.stalled": "监控代理的处理流程停滞，心跳仍在继续",
}
_VERBS = {
    "file.created": "创建",
    "file.modified": "修改",
    "file.deleted": "删除",
    "file.opened": "打开",
    "file.moved": "移动",
}
_HOW = {"exact": "完全相同的副本", "archive": "压缩包中的副本", "partial": "编辑过的副本"}
_SOURCE_STATES = {"deleted": "（原文件已删除或移动）", "previous-version": "的早期版本"}
_OPS = {
    "eq": "等于 {}",
    "in": "是 {} 之一",
    "not_in": "不是 {} 中的任何一个",
    "gte": "≥ {}",
    "gt": "> {}",
    "lte": "≤ {}",
    "lt": "< {}",
    "glob": "匹配 {}",
    "not_glob": "不匹配 {} 中的任何一个",
    "regex": "匹配 /{}/",
    "contains": "包含 {}",
    "in_watchlist": "在关注名单 {} 中",
}
_THRESHOLD = {"count": "事件数", "distinct": "不同的 {} 个数", "sum": "{} 合计"}
_UNITS = (("d", " 天"), ("h", " 小时"), ("min", " 分钟"), ("s", " 秒"))


def severity(value: str | None) -> str:
    return SEVERITY_ZH.get(value or "", value or "")


def level_name(level: str | None) -> str:
    return LEVEL_LABELS.get(level or "", (level or "", ""))[0]


def duration(text: str) -> str:
    """'10 min' -> '10 分钟' (the English duration of rules/explain.py, said in Chinese)."""
    number, _, unit = text.partition(" ")
    return number + dict(_UNITS).get(unit, " " + unit)


def test_text(op: str, shown: str, operand: Any) -> str:
    if op == "exists":
        return "存在" if operand else "不存在"
    return _OPS.get(op, op + " {}").format(shown)


def condition(c: Condition) -> str:
    return f"{c.field} " + " 且 ".join(test_text(t.op, t.shown, t.operand) for t in c.tests)


def threshold(t: Threshold) -> str:
    subject = _THRESHOLD[t.kind].format(t.field)
    return f"{subject} " + " 且 ".join(test_text(x.op, x.shown, x.operand) for x in t.tests)


def measure_name(t: Threshold) -> str:
    return _THRESHOLD[t.kind].format(t.field)


# --- what happened --------------------------------------------------------------------------------


def _level_text(event: Event) -> str:
    entry = f"，登记事项《{event.register_entry}》" if event.register_entry else ""
    return f"密级：{level_name(event.level)}{entry}"


# the file types of saved mail (agent/content/mime.py, ole_msg.py, tnef.py): a match of a member is
# a classified file attached to a message
MAIL_FILE_TYPES = frozenset({"eml", "emlx", "mbox", "msg", "tnef"})


# documents whose archive members are files embedded in them (agent/content/archive.py walk_embedded)
DOCUMENT_FILE_TYPES = frozenset({"docx", "xlsx", "pptx", "odt", "ods", "odp", "doc", "xls", "ppt", "vsd", "ole2"})


def embedded_in(event: Event, method: str) -> str | None:
    """"pdf" when the event's source was found attached to a PDF, "document" when embedded in an
    office document (as its archive member), else None; rules/explain.py says so in English."""
    member = isinstance(event.details, dict) and event.details.get("archive_member")
    if not (method == "archive" or member):
        return None
    return "pdf" if event.file_type == "pdf" else "document" if event.file_type in DOCUMENT_FILE_TYPES else None


def attached(event: Event, method: str) -> bool:
    """Whether the event's source was found attached to a saved message (as its archive member);
    rules/explain.py says so in English."""
    member = isinstance(event.details, dict) and event.details.get("archive_member")
    return event.file_type in MAIL_FILE_TYPES and (method == "archive" or bool(member))


# a member the agent found written out in a text (agent/content/encoded.py names them so: "(base64 1)",
# "(hex 2)", "pump.dwg (uuencoded)"; in a saved email "(part 1 base64 2)"), by its encoding
_WRITTEN_OUT = re.compile(r"\((?:part \d+ )?(base64|hex) \d+\)|.+ \((uuencode)d\)")
_ENCODINGS = {"base64": ("base64", "base64"), "hex": ("hex", "十六进制"), "uuencode": ("uuencode", "uuencode")}


def written_out(event: Event) -> tuple[str, str] | None:
    """(English, Chinese) name of the encoding the event's source was found written out in as text
    (base64 in a .txt: its archive member names it), or None."""
    member = isinstance(event.details, dict) and event.details.get("archive_member")
    if not isinstance(member, str):
        return None
    found = _WRITTEN_OUT.fullmatch(member.rsplit("!/", 1)[-1])
    return _ENCODINGS[found.group(1) or found.group(2)] if found else None


def _content(event: Event) -> str:
    if event.level and event.source_path:
        method = event.match.method if event.match else "exact"
        how = _HOW.get(method, "副本")
        if how == _HOW["partial"] and isinstance(event.details, dict) and event.details.get("lineage") == "bytes":
            how += "（按字节追溯）"
        if (encoding := written_out(event)) is not None:
            how = f"以{encoding[1]}文本写出的" + (how if method == "partial" else "副本")
            if event.file_type in MAIL_FILE_TYPES:
                how = "邮件中" + how
        elif (host := embedded_in(event, method)) is not None:
            how = ("PDF 附件中的" if host == "pdf" else "文档中嵌入的") + (how if method == "partial" else "副本")
        elif attached(event, method):
            how = "邮件附件中的" + (how if method == "partial" else "副本")
        state = _SOURCE_STATES.get(
            (event.details or {}).get("source_state") if isinstance(event.details, dict) else None, ""
        )
        return f"，是涉密文件 {event.source_path} {state}的{how}（{_level_text(event)}）"
    if event.level:
        return f"，含有涉密内容（{_level_text(event)}）"
    return ""


def _renamed(event: Event, extension: str | None) -> str:
    if not event.type_mismatch or not event.file_type:
        return ""
    name = f"扩展名为 .{extension}" if extension else "没有扩展名"
    return f"；其内容是 {event.file_type} 文件，但文件名{name}"


def _detections(event: Event) -> str:
    found = [f"{d.count} × {d.detector}" for d in event.detections if d.count and d.detector not in BLIND_SPOTS]
    blind = [
        f"{d.detector}（{d.sample}）" if d.sample else d.detector
        for d in event.detections
        if d.count and d.detector in BLIND_SPOTS
    ]
    text = f"；内容检查发现 {'、'.join(found)}" if found else ""
    return text + (f"；监控代理无法查看其内容：{'；'.join(blind)}" if blind else "")


def describe_event(
    event: Event, when: str, destination: str, device: str, app: str | None, extension: str | None
) -> str:
    """One sentence: what the event says happened (event already made plain by the caller)."""
    path = event.path or "（路径未知）"
    if event.type == "egress.file":
        what = f"{path} 被写入{destination}{_content(event)}{_renamed(event, extension)}{_detections(event)}"
        if event.error:
            what += f"；监控代理无法读取它：{event.error}"
    elif event.type == "file.moved":
        what = f"涉密目录中的 {path} 被移动到 {event.dest_path or '（未知）'}{_content(event)}"
    elif event.type in _VERBS:
        what = f"涉密目录中的 {path} 被{_VERBS[event.type]}{_content(event)}{_renamed(event, extension)}{_detections(event)}"
    elif event.type == "classified.read":
        process = (event.details or {}).get("process") if isinstance(event.details, dict) else None
        exe = process.get("exe") if isinstance(process, dict) and isinstance(process.get("exe"), str) else None
        reader = (app or "一个网络应用") + (f"（{exe}）" if exe else "")
        level = f"（{_level_text(event)}）" if event.level else ""
        what = f"{reader} 读取了涉密目录中的文件 {path}{level}"
    elif event.type in ("media.mounted", "media.unmounted") and event.media is not None:
        verb = "挂载于" if event.type == "media.mounted" else "卸载自"
        what = f"移动存储介质 {device} {verb} {event.media.mountpoint}"
    else:
        what = f"监控代理报告了 {event.type}（{EVENT_TYPES_ZH.get(event.type, '一个事件')}）"
        if event.error:
            what += f"：{event.error}"
    return f"{what}，用户 {event.user or '（未知）'}，主机 {event.host or '（未知）'}，时间 {when}"


# --- why the rule matched -------------------------------------------------------------------------


def rule_line(rule_id: str, title: str, held: Iterable[tuple[str, str, Condition]]) -> str:
    """'规则 X（标题）命中：field = value（条件）；…。' from (field, shown value, condition)."""
    parts = "；".join(f"{field} = {value}（{condition(c)}）" for field, value, c in held)
    return f"规则 {rule_id}（{title}）命中：{parts}。"


def unless_line(shown: Iterable[tuple[str, str, Condition]]) -> str:
    parts = "；".join(f"{field} = {value}（不满足：{condition(c)}）" for field, value, c in shown)
    return f"其例外条件均不成立：{parts}。"


def severity_line(
    declared: str, value: str | None, level: str | None, watchlist, listed: bool, listed_value: str
) -> str:
    text = f"严重程度：{severity(value)}"
    if declared == BY_LEVEL:
        text += f"（按密级：{level_name(level) if level else '非涉密'}）"
    if listed and watchlist is not None:
        text += f"，因 {watchlist.field} {listed_value} 在关注名单“{watchlist.name}”中而提高一级"
    return text + "。"


def correlation_severity(declared: str, value: str, watchlist, listed: str | None) -> str:
    text = f"严重程度：{severity(value)}"
    if declared == BY_LEVEL:
        text += "（按各事件中的最高密级）"
    if listed and watchlist is not None:
        text += f"，因 {watchlist.field} {listed} 在关注名单“{watchlist.name}”中而提高一级"
    return text + "。"


def grouping(group: dict[str, Any], plain: Callable[[str], str | None]) -> str:
    return ("，按 " + "、".join(f"{k} = {plain(str(v))}" for k, v in group.items()) + " 分组") if group else ""


def rule_names(rules: Iterable[Any]) -> str:
    return "、".join(f"{r.id}（{r.title_in('zh')}）" for r in rules)
