"""Alerts raised from single events: the built-in classified-egress mapping.

Until the rule language lands, one mapping turns each egress event that carries classified
content into a `classified-egress` alert, severity by level, with an explanation a security
officer can read in English and Chinese.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.events import Event
from rules.levels import LEVEL_LABELS, severity_for_level

RULE_CLASSIFIED_EGRESS = "MW-EGRESS-CLASSIFIED"


@dataclass(frozen=True)
class AlertDraft:
    rule_id: str
    category: str
    severity: str
    title: str
    explanation: str
    event_ids: tuple[str, ...]
    agent_id: str
    host: str
    user: str


def alerts_for(event: Event) -> list[AlertDraft]:
    if event.type != "egress.file" or not event.level:
        return []
    zh_level, en_level = LEVEL_LABELS.get(event.level, (event.level, event.level))
    where = _destination(event)
    how = {"exact": "an exact copy", "archive": "inside an archive", "partial": "an edited copy"}.get(
        event.match.method if event.match else "exact", "a copy"
    )
    source = event.source_path or "(unknown source)"
    entry = f", register entry '{event.register_entry}'" if event.register_entry else ""
    path = event.path or "(unknown path)"
    english = (
        f"{path} written to {where} is {how} of classified file {source} "
        f"(level {event.level}: {en_level}{entry}), by user {event.user or '?'} on host {event.host or '?'} at {event.ts}."
    )
    chinese = f"用户 {event.user or '?'} 在主机 {event.host or '?'} 上把{zh_level}文件 {source} 复制到{_destination_zh(event)}：{path}。"
    return [
        AlertDraft(
            rule_id=RULE_CLASSIFIED_EGRESS,
            category="classified-egress",
            severity=severity_for_level(event.level),
            title=f"Classified file ({event.level}) copied to {_place_kind(event)}",
            explanation=f"{english}\n{chinese}",
            event_ids=(event.id,),
            agent_id=event.agent_id,
            host=event.host,
            user=event.user,
        )
    ]


def _place_kind(event: Event) -> str:
    return "removable media" if event.egress == "removable" else "an egress folder"


def _destination_zh(event: Event) -> str:
    if event.media is None:
        return "外发目录"
    return f"移动存储介质（挂载点 {event.media.mountpoint}）"


def _destination(event: Event) -> str:
    media = event.media
    if media is None:
        return "an egress folder"
    device = " ".join(x for x in (media.vendor, media.model) if x) or media.device or "unknown device"
    details = ", ".join(
        x for x in (f"label '{media.label}'" if media.label else "", f"serial {media.serial}" if media.serial else "", media.fstype) if x
    )
    return f"removable media {device} mounted at {media.mountpoint}" + (f" ({details})" if details else "")
