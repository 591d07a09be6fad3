"""The messages a channel sends: bilingual (Chinese first, then English) and safe to render.

Alerts quote what agents reported (file names, device labels, user and host names), and an agent
or a file name is attacker-controlled. Every such value goes through one of three cleaners:
`line()` for anything that becomes a one-line field or an e-mail header (control characters and
line breaks removed, so no header can be injected), `block()` for plain-text bodies, and `md()` for
Markdown bodies (DingTalk, Feishu, Slack, ...), which also replaces Markdown and HTML syntax with
look-alike full-width characters: Markdown dialects differ in which backslash escapes they honour,
a full-width ＜ or ［ renders as text in all of them. Web addresses are defanged in every format
(hxxp, ：//, www．, mailto：, and the dots of a bare name ending in a top-level domain: drop．cn/x)
so that a file name cannot put a link in front of the security team. Every field is capped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from rules.explain import in_language
from rules.levels import SEVERITIES
from rules.units import format_bytes
from server import firmtime
from server.notify.tlds import TLDS
from server.times import aware, iso

MAX_TITLE_CHARS = 200
MAX_FIELD_CHARS = 300
MAX_EXPLANATION_CHARS = 2000
DIGEST_TOP_N = 10

SEVERITY_ZH = {"critical": "严重", "high": "高", "medium": "中", "low": "低", "info": "提示"}
CATEGORY_ZH = {
    "classified-egress": "商业秘密外发",
    "marked-egress": "带密级标志文件外发",
    "state-secret-marking": "发现国家秘密标志",
    "personal-data-egress": "个人信息外发",
    "bulk-egress": "批量外发",
    "mass-deletion": "批量删除",
    "off-hours": "非工作时间操作",
    "unknown-device": "未登记的移动存储设备",
    "agent-offline": "终端离线",
    "agent-tamper": "终端被篡改",
}
_MD_SAFE = str.maketrans({
    "\\": "＼", "`": "｀", "*": "＊", "_": "＿", "{": "｛", "}": "｝", "[": "［", "]": "］", "(": "（",
    ")": "）", "#": "＃", "+": "＋", "-": "－", "!": "！", "|": "｜", "<": "＜", ">": "＞", "~": "～",
    "&": "＆", "=": "＝", "$": "＄", "^": "＾", "@": "＠", ":": "：",
})  # fmt: skip
_SCHEME = re.compile(r"(?i)\bhttp(s?)(?=:)")
_WWW = re.compile(r"(?i)\b(www)\.")
# schemes that need no "//" to be links: mailto:a@b, tel:..., javascript:...
_PSEUDO_SCHEME = re.compile(r"(?i)\b(mailto|tel|sms|callto|javascript|file):")
# a dotted name (labels of letters, digits, "-" or "_", any script) not inside a longer token
_DOTTED = re.compile(r"(?<![\w.-])(?:[\w-]+\.)+[\w-]+")


@dataclass(frozen=True)
class Message:
    title: str  # one line, for a subject or a card title
    text: str  # plain text body
    markdown: str  # Markdown body: every outside value neutralised
    data: dict = field(default_factory=dict)  # structured, for JSON webhooks


def _bare_domain(match: re.Match) -> str:
    """Every dot of a dotted name becomes ． when a label after the first is a top-level domain
    (drop.cn/x, evil.example.com, a.com.cn): chat and mail clients link such names by themselves."""
    name = match.group(0)
    labels = name.lower().split(".")
    return name.replace(".", "．") if any(label in TLDS for label in labels[1:]) else name


def _defang(value: str) -> str:
    value = _SCHEME.sub(lambda m: "hxxp" + m.group(1), value)
    value = _PSEUDO_SCHEME.sub(lambda m: m.group(1) + "：", value.replace("://", "：//"))
    return _WWW.sub(lambda m: m.group(1) + "．", _DOTTED.sub(_bare_domain, value))


def _no_controls(value: str, keep_newlines: bool) -> str:
    out = []
    for ch in value:
        if ch == "\n" and keep_newlines:
            out.append("\n")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            out.append(" ")  # CR, LF, NUL, bidi overrides, zero-width, line separators, unassigned
        else:
            out.append(ch)
    return "".join(out)


def _cap(value: str, max_chars: int) -> str:
    return value if len(value) <= max_chars else value[: max_chars - 1] + "…"


def line(value, max_chars: int = MAX_FIELD_CHARS) -> str:
    """One line: no control characters or line breaks, runs of blanks squeezed, capped."""
    text = " ".join(_no_controls(_defang(str(value if value is not None else "")), False).split())
    return _cap(text, max_chars)


def block(value, max_chars: int = MAX_EXPLANATION_CHARS) -> str:
    """Plain text that may span lines: control characters removed, lines trimmed, capped."""
    text = _no_controls(
        _defang(str(value if value is not None else "")).replace("\r\n", "\n").replace("\r", "\n"), True
    )
    lines = [" ".join(part.split()) for part in text.split("\n")]
    return _cap("\n".join(x for x in lines if x), max_chars)


def md(value: str) -> str:
    """Already cleaned text made inert in Markdown (and HTML) by full-width look-alikes."""
    return value.translate(_MD_SAFE)


def _sev(severity: str) -> tuple[str, str]:
    return SEVERITY_ZH.get(severity, line(severity, 20)), line(severity, 20).upper()


def _when(value, zone: str, lang: str) -> str:
    """'2026-01-01 08:00:00 北京时间 (UTC+08:00)': the firm's clock (server.timezone), the zone named."""
    if isinstance(value, datetime):
        return f"{firmtime.show(value, zone)} {firmtime.zone_label(zone, lang, value)}"
    return line(value, 40)


def alert_message(
    alert: dict,
    public_url: str | None = None,
    zone: str = firmtime.DEFAULT_ZONE,
    lang: str | None = None,
    title_zh: str | None = None,
) -> Message:
    """The message for one alert (a row of `alerts` as a dict); times on the firm's clock, `zone`.

    `lang` (server.language, "zh" or "en"): the message in that language only, its explanation the
    part in it (rules/explain.py in_language), the rule's `title_zh` as its Chinese title; None:
    both languages, as before there was the setting."""
    sev_zh, sev_en = _sev(alert["severity"])
    category = line(alert["category"], 64)
    cat_zh = CATEGORY_ZH.get(alert["category"], category)
    title, host, user = (
        line(alert["title"], MAX_TITLE_CHARS),
        line(alert.get("host") or "-"),
        line(alert.get("user") or "-"),
    )
    rule = line(alert.get("rule_id") or "", 128)
    explanation = block(in_language(alert.get("explanation") or "", lang) if lang else alert.get("explanation") or "")
    shown_title = line(title_zh, MAX_TITLE_CHARS) if lang == "zh" and title_zh else title
    when_zh, when_en = _when(alert.get("created_at"), zone, "zh"), _when(alert.get("created_at"), zone, "en")
    number, count = int(alert["id"]), int(alert.get("count") or 1)
    link = f"{public_url.rstrip('/')}/api/v1/alerts/{number}" if public_url else None
    # an incident (server/incidents.py): its files so far and where they went
    incident = alert.get("kind") == "incident"
    files, size, where = int(alert.get("file_count") or 0), format_bytes(int(alert.get("total_bytes") or 0)), line(alert.get("destination") or "-")

    def render(esc, bold, sep: str) -> str:
        zh = [
            bold(f"密卫告警 #{number}：{esc(shown_title)}"),
            f"严重程度：{sev_zh}　类别：{esc(cat_zh)}",
            f"主机：{esc(host)}　用户：{esc(user)}",
            f"时间：{esc(when_zh)}　次数：{count}　规则：{esc(rule)}",
            *([f"文件：{files} 个，共 {size}　去向：{esc(where)}"] if incident else []),
        ]
        en = [
            bold(f"MiWei alert #{number}: {esc(title)}"),
            f"Severity: {sev_en}  Category: {esc(category)}",
            f"Host: {esc(host)}  User: {esc(user)}",
            f"Time: {esc(when_en)}  Count: {count}  Rule: {esc(rule)}",
            *([f"Files: {files} ({size})  Destination: {esc(where)}"] if incident else []),
        ]
        # quoted: a line break inside a file name cannot forge a line that looks like one of ours
        said = {"zh": ("说明：", "控制台："), "en": ("Explanation:", "Console:")}.get(
            lang or "", ("说明 / Explanation:", "控制台 / Console:")
        )
        rest = [said[0], *(f"> {esc(x)}" for x in explanation.split("\n"))]
        if link:
            rest.append(f"{said[1]} {link}")
        parts = [*({"zh": zh, "en": en}.get(lang or "") or [*zh, "", *en]), "", *rest]
        return sep.join(p for p in parts if p or sep == "\n")

    text = render(str, str, "\n")
    markdown = render(md, lambda x: f"**{x}**", "\n\n")
    subject = line(
        {
            "zh": f"[密卫] {sev_zh} #{number}：{shown_title}（{host}）",
            "en": f"[MiWei] {sev_en} #{number}: {title} ({host})",
        }.get(lang or "", f"[密卫 MiWei] {sev_zh}/{sev_en} #{number}: {title} ({host})"),
        MAX_TITLE_CHARS,
    )
    data = {
        "alert": {
            "id": number, "rule_id": rule, "category": category, "severity": line(alert["severity"], 16), "title": title,
            "host": host, "user": user, "count": count, "explanation": explanation,
            **({"file_count": files, "total_bytes": int(alert.get("total_bytes") or 0), "destination": where} if incident else {}),
            **_times(alert.get("created_at"), zone),
        },
        **({"link": link} if link else {}),
    }  # fmt: skip
    return Message(subject, text, markdown, data)


def _times(value, zone: str) -> dict:
    """For JSON webhooks: created_at ISO 8601 UTC (as the API gives it), and the firm's wall clock."""
    if not isinstance(value, datetime):
        return {"created_at": line(value, 40) if value is not None else None}
    return {
        "created_at": iso(aware(value)),
        "created_at_local": firmtime.show(value, zone),
        "timezone": firmtime.zone(zone).key,
    }


def digest_message(
    alerts: list[dict],
    window_s: float,
    max_per_hour: int,
    lang: str | None = None,
    titles_zh: dict[str, str] | None = None,
) -> Message:
    """One message for the alerts held back by a channel's rate limit: counts and the top titles;
    in `lang` only when given (titles_zh: rule id -> Chinese title), else in both languages."""
    by_severity = {s: sum(1 for a in alerts if a["severity"] == s) for s in SEVERITIES}
    by_category: dict[str, int] = {}
    for a in alerts:
        by_category[a["category"]] = by_category.get(a["category"], 0) + 1
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    top = sorted(alerts, key=lambda a: (rank.get(a["severity"], 9), a["id"]))[:DIGEST_TOP_N]
    n, hours = len(alerts), max(1, round(window_s / 3600))
    sev_zh = "，".join(f"{SEVERITY_ZH[s]} {c}" for s, c in by_severity.items() if c)
    sev_en = ", ".join(f"{s} {c}" for s, c in by_severity.items() if c)
    cats = sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))
    cat_zh = "，".join(f"{CATEGORY_ZH.get(k, line(k, 64))} {c}" for k, c in cats)
    cat_en = ", ".join(f"{line(k, 64)} {c}" for k, c in cats)
    chinese = lang == "zh"
    tops = [
        f"#{int(a['id'])} {_sev(a['severity'])[0 if chinese else 1]} "
        f"{line((titles_zh or {}).get(a.get('rule_id') or '') if chinese and (titles_zh or {}).get(a.get('rule_id') or '') else a['title'], 120)}"
        f" ({line(a.get('host') or '-', 80)}, {line(a.get('user') or '-', 80)})"
        for a in top
    ]
    subject = {"zh": f"[密卫] 告警摘要：{n} 条告警", "en": f"[MiWei] digest: {n} alerts"}.get(
        lang or "", f"[密卫 MiWei] 告警摘要 digest: {n} 条告警 / alerts"
    )
    zh = [
        f"密卫告警摘要：{n} 条告警超过本通道每 {hours} 小时 {max_per_hour} 条的限制，合并发送。",
        f"按严重程度：{sev_zh}",
        f"按类别：{cat_zh}",
    ]
    en = [
        f"MiWei digest: {n} alerts over this channel's limit of {max_per_hour} per {hours} h, sent together.",
        f"By severity: {sev_en}",
        f"By category: {cat_en}",
    ]
    head = {"zh": f"最严重的 {len(top)} 条：", "en": f"Top {len(top)}:"}.get(
        lang or "", f"最严重的 {len(top)} 条 / Top {len(top)}:"
    )
    said = {"zh": [zh], "en": [en]}.get(lang or "", [zh, en])
    text = "\n".join([*(x for part in said for x in (*part, "")), head, *tops])
    markdown = "\n\n".join(
        [
            *(x for part in said for x in (f"**{md(part[0])}**", *map(md, part[1:]))),
            head,
            *(f"- {md(t)}" for t in tops),
        ]
    )
    data = {
        "digest": {
            "count": n,
            "by_severity": {k: v for k, v in by_severity.items() if v},
            "by_category": dict(cats),
            "top": tops,
        }
    }
    return Message(subject, text, markdown, data)


def test_message(channel_name: str) -> Message:
    name = line(channel_name or "-", 100)
    zh, en = f"密卫测试消息：通道「{name}」可以送达。", f"MiWei test message: channel '{name}' works."
    return Message("[密卫 MiWei] 测试 test", f"{zh}\n\n{en}", f"{md(zh)}\n\n{md(en)}", {"test": True, "channel": name})
