"""Words of the reports a person reads (evidence report, assessor's report) in Chinese or English.

Values the console also shows (severities, statuses, levels, event types, places, match methods,
register values) are said exactly as the console says them: through its message catalogues
(server/console/labels.py and locale/). The reports' own headings and column names are here, both
languages side by side, so a report never mixes them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

LANGS = ("zh", "en")

WORDS: dict[str, tuple[str, str]] = {  # key: (zh, en)
    "report_title": ("证据报告：告警 #{id}", "Evidence report: alert #{id}"),
    "generated": ("生成时间", "Generated"),
    "generated_by": ("导出人", "Exported by"),
    "key": ("签名密钥指纹 (SHA-256)", "Signing key fingerprint (SHA-256)"),
    "times_in": ("时间均为", "All times in"),
    "incident": ("事件概况", "The incident"),
    "title": ("标题", "Title"),
    "category": ("类别", "Category"),
    "severity": ("严重程度", "Severity"),
    "status": ("状态", "Status"),
    "assignee": ("负责人", "Assignee"),
    "created": ("告警时间", "Raised"),
    "first_last": ("首个 / 最后一个文件时间", "First / last file"),
    "who": ("人员、终端与设备", "Who, which PC and device"),
    "user": ("用户", "User"),
    "host": ("终端（计算机名）", "PC (host name)"),
    "agent": ("终端代理 ID", "Agent id"),
    "destination": ("去向", "Destination"),
    "place_kind": ("去向类型", "Kind of place"),
    "app": ("应用", "Application"),
    "device": ("设备", "Device"),
    "vendor": ("厂商", "Vendor"),
    "file_count": ("文件数", "Files"),
    "total_size": ("总大小", "Total size"),
    "top_level": ("最高密级", "Highest level"),
    "register_item": ("登记事项", "Register item"),
    "explanation": ("告警说明", "Why this alert was raised"),
    "files": ("涉及文件", "The files"),
    "files_more": (
        "另有 {n} 个文件未列出（见控制台告警页面或 API /api/v1/alerts/{id}/files）",
        "{n} more files not listed (the console's alert page, or the API /api/v1/alerts/{id}/files)",
    ),
    "time": ("时间", "Time"),
    "file": ("文件", "File"),
    "size": ("大小", "Size"),
    "level": ("密级", "Level"),
    "source": ("来源", "Source"),
    "match": ("匹配方式", "How it matched"),
    "handling": ("处理经过", "How the alert was handled"),
    "actor": ("操作人", "By"),
    "action": ("操作", "Action"),
    "comment": ("备注", "Comment"),
    "assigned_to": ("指派给 {name}", "Assigned to {name}"),
    "nobody": ("无人", "nobody"),
    "timeline": (
        "前后 24 小时时间线（该用户或该终端的事件）",
        "Timeline, 24 hours either side (events of this user or PC)",
    ),
    "timeline_more": ("仅列出前 {n} 条", "Only the first {n} are listed"),
    "type": ("事件类型", "Event"),
    "path": ("路径", "Path"),
    "in_alert": ("本告警", "This alert"),
    "continuity": ("终端连续性", "The agent's continuity"),
    "continuity_how": (
        "在线比例 = 1 − 离线时间 / 监控时间。离线时间为：心跳中断（自最后一次心跳至恢复）、正常停止（agent.stopped 至下一次 agent.started）"
        "及当前超过 server.agent_offline_s 未收到心跳的时间之并集，限于本期间及终端登记至退役之间。",
        "Online share = 1 − offline time / monitored time. Offline time is the union of heartbeat silences (from the last heartbeat to the"
        " one that ended it), clean stops (agent.stopped to the next agent.started) and a current silence longer than"
        " server.agent_offline_s, within the period and the agent's enrolment.",
    ),
    "period": ("期间", "Period"),
    "monitored": ("监控时间（小时）", "Monitored (hours)"),
    "offline": ("离线时间（小时）", "Offline (hours)"),
    "online_share": ("在线比例", "Online share"),
    "gaps": ("离线区间", "Offline spans"),
    "start": ("开始", "From"),
    "end": ("结束", "Until"),
    "duration": ("时长（分钟）", "Minutes"),
    "why": ("原因", "Why"),
    "silent": ("心跳中断", "no heartbeat"),
    "stopped": ("正常停止", "stopped cleanly"),
    "none": ("无", "none"),
    "integrity": (
        "完整性记录（链断裂、缺口、篡改及启停）",
        "Integrity records (chain gaps and breaks, tampering, starts and stops)",
    ),
    "detail": ("详情", "Detail"),
    "no_agent": ("无对应终端", "No agent"),
    "verify": ("如何核验", "How to verify"),
    "verify_1": (
        "解压证据包后运行：sha256sum -c SHA256SUMS（核对文件清单）",
        "Unzip the pack, then: sha256sum -c SHA256SUMS (the files are the ones listed)",
    ),
    "verify_2": (
        "miwei-server verify-pack 证据包.zip --public-key 采集端公钥.pem：输出 valid 即完整且由该密钥签名",
        "miwei-server verify-pack pack.zip --public-key collector.pub.pem: 'valid' means whole and signed by that key",
    ),
    "verify_3": (
        "无 MiWei 时：用 MiWei 文档 docs/evidence.md 中的 Python 脚本及公钥核验",
        "Without MiWei: the Python snippet in MiWei's docs/evidence.md, with the public key alone",
    ),
    "verify_4": (
        "将上方指纹与采集端显示的指纹（miwei-server signing-key）核对",
        "Compare the fingerprint above with the collector's (miwei-server signing-key)",
    ),
    "verify_5": (
        "本报告（report.html、report.pdf）与其他文件一样列于已签名的 manifest.json 中",
        "This report (report.html, report.pdf) is listed in the signed manifest.json like every other file",
    ),
    "sealed": ("已封存的事件", "Sealed events"),
    "sealed_n": (
        "{sealed} / {total} 个事件已有每日封存的证明（proofs.json）",
        "{sealed} of {total} events have a proof to a daily seal (proofs.json)",
    ),
    "similarity": ("相似度", "similarity"),
}


def word(key: str, lang: str, **values: object) -> str:
    zh, en = WORDS[key]
    text = zh if lang == "zh" else en
    return text.format(**values) if values else text


@lru_cache(maxsize=1)
def _translations():
    from server.console.i18n import load_translations  # here: server.console imports the pack export

    return load_translations()


def label(kind: str, value: str | None, lang: str) -> str:
    """A value as the console's catalogue says it in `lang` (the value itself when it has no word)."""
    if value is None or value == "":
        return ""
    from server.console.labels import label as console_label

    return _translations()[lang].gettext(console_label(kind, value))


def system_note(lang: str) -> Callable[[str], str]:
    """MiWei's own history notes (escalations, agent back...) in `lang` (server/console/validation.py)."""
    from server.console.validation import sayer

    return sayer(lang)
