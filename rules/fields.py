"""The fields a rule can test, each with its kind and how to read it from an event.

A field is named as rules write it (`level`, `media.serial`, `detections.cn_resident_id`); its
kind decides which operators apply and how operands are read (sizes take units: 200MB).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rules.events import EVENT_TYPES, MATCH_METHODS, Event, is_portable
from rules.levels import LEVELS
from rules.worktime import WEEKDAYS, WorkTime

# removable: a USB stick or disk; folder: a folder an admin listed; sync: a cloud-drive client's
# folder; share: a network share; im: an IM client's file folder; phone: a phone or camera reached
# over MTP/PTP; printer: a print job
EGRESS_KINDS: tuple[str, ...] = ("removable", "folder", "sync", "share", "im", "phone", "printer")
PLACES: tuple[str, ...] = ("classified", "egress", "agent")
DETECTOR_ID = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text | number | bool
    get: Callable[[Event, WorkTime], Any]
    choices: tuple[str, ...] | None = None  # the only values a text field can take
    unit: str = ""  # "bytes": operands may be written 200MB
    groupable: bool = False  # may be used in a correlation's group_by


def _place(e: Event, _: WorkTime) -> str:
    if e.type.startswith(("file.", "classified.")):
        return "classified"
    if e.type.startswith(("egress.", "media.")):
        return "egress"
    return "agent"


def _name(e: Event, _: WorkTime) -> str | None:
    return posixpath.basename(e.path.replace("\\", "/")) if e.path else None


def _extension(e: Event, w: WorkTime) -> str | None:
    name = _name(e, w)
    if name is None:
        return None
    ext = os.path.splitext(name)[1]
    return ext[1:].lower() if ext else ""


PREVIOUS_STOPS: tuple[str, ...] = ("clean", "crash", "none")  # agent.started: how the last run ended


def _started(key: str, kind: type) -> Callable[[Event, WorkTime], Any]:
    """A fact agent.started carries in its details about the run before: absent on other events,
    and absent when the details hold something else than the field's kind."""

    def get(e: Event, _: WorkTime) -> Any:
        value = e.details.get(key) if e.type == "agent.started" and isinstance(e.details, dict) else None
        return value if isinstance(value, kind) else None

    return get


def _detail(key: str) -> Callable[[Event, WorkTime], Any]:
    """A text fact of the event's details (absent when the details hold something else)."""

    def get(e: Event, _: WorkTime) -> Any:
        value = e.details.get(key) if isinstance(e.details, dict) else None
        return value if isinstance(value, str) else None

    return get


def _media(attr: str) -> Callable[[Event, WorkTime], Any]:
    return lambda e, _: getattr(e.media, attr) if e.media else None


def _attr(attr: str) -> Callable[[Event, WorkTime], Any]:
    return lambda e, _: getattr(e, attr, None)


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("type", "text", _attr("type"), tuple(EVENT_TYPES), groupable=True),
        Field("place", "text", _place, PLACES),
        Field("egress", "text", _attr("egress"), EGRESS_KINDS, groupable=True),
        # the application behind the place or the read: "WeChat", "Baidu Netdisk", a printer's name
        Field("app", "text", _detail("app"), groupable=True),
        Field("level", "text", _attr("level"), LEVELS, groupable=True),
        Field("match.method", "text", lambda e, _: e.match.method if e.match else None, MATCH_METHODS),
        Field("match.similarity", "number", lambda e, _: e.match.similarity if e.match else None),
        Field("file_type", "text", _attr("file_type"), groupable=True),
        Field("type_mismatch", "bool", _attr("type_mismatch")),
        Field("size", "number", _attr("size"), unit="bytes"),
        Field("path", "text", _attr("path"), groupable=True),
        Field("name", "text", _name, groupable=True),
        Field("extension", "text", _extension, groupable=True),
        Field("source_path", "text", _attr("source_path"), groupable=True),
        Field("dest_path", "text", _attr("dest_path")),
        Field("register_entry", "text", _attr("register_entry"), groupable=True),
        Field("sha256", "text", _attr("sha256"), groupable=True),
        Field("error", "text", _attr("error")),
        Field("uninspectable", "number", lambda e, w: _uninspectable(e, w)),
        Field("previous_stop", "text", _started("previous_stop", str), PREVIOUS_STOPS),
        Field("rebooted", "bool", _started("rebooted", bool)),
        Field("user", "text", _attr("user"), groupable=True),
        Field("host", "text", _attr("host"), groupable=True),
        Field("agent_id", "text", _attr("agent_id"), groupable=True),
        Field("media.mountpoint", "text", _media("mountpoint"), groupable=True),
        Field("media.device", "text", _media("device"), groupable=True),
        Field("media.fstype", "text", _media("fstype")),
        Field("media.label", "text", _media("label"), groupable=True),
        Field("media.serial", "text", _media("serial"), groupable=True),
        Field("media.vendor", "text", _media("vendor"), groupable=True),
        Field("media.model", "text", _media("model"), groupable=True),
        Field("media.vendor_id", "text", _media("vendor_id"), groupable=True),
        Field("media.product_id", "text", _media("product_id"), groupable=True),
        Field("media.bus", "text", _media("bus")),
        # vendor_id:product_id:serial in lower case, what the device allow-list matches
        Field("media.identity", "text", _media("identity"), groupable=True),
        Field("media.portable", "bool", lambda e, _: is_portable(e) if e.media else None),
        Field("hour", "number", lambda e, w: w.local(e.ts).hour),
        Field("weekday", "text", lambda e, w: WEEKDAYS[w.local(e.ts).weekday()], WEEKDAYS),
        Field("working_hours", "bool", lambda e, w: w.is_working_hours(e.ts)),
        Field("holiday", "bool", lambda e, w: w.is_holiday(e.ts)),
    )
}


# Detections that say what the agent could NOT see into (a file gone before it was read, a
# parser that failed or ran out of time, an encrypted or over-budget archive member...): the
# `uninspectable` field counts them all, so one rule alerts on every blind spot, present and future.
BLIND_SPOTS: frozenset[str] = frozenset({
    "vanished",  # written, then gone (or swapped for a FIFO) before it could be read
    "unreadable",  # could not be opened or read
    "not_regular",  # a FIFO, socket or device where a file was written
    "inspection_timeout",  # the inspection worker overran its deadline and was killed
    "inspection_failed",  # the inspection worker crashed or answered nonsense
    "inspection_truncated",  # the byte, text or time budget ran out: only part was read
    "parse_error",  # the content could not be parsed (corrupt, or not what it claims)
    "detector_failed",  # one detector failed: its answer is missing
    "archive_encrypted",  # a password-protected archive or member
    "archive_bomb",  # tripped a decompression-bomb limit
    "archive_not_inspected",  # members or a format part that could not be read
    "archive_too_deep",  # nested deeper than the walk goes
    "archive_member_skipped",  # a member over its own budget, skipped and named
    "unwalkable",  # a folder that could not be walked or watched
})


def _uninspectable(e: Event, _: WorkTime) -> int:
    return sum(d.count for d in e.detections if d.detector in BLIND_SPOTS)


def _detection_count(detector: str) -> Callable[[Event, WorkTime], int]:
    return lambda e, _: sum(d.count for d in e.detections if d.detector == detector)


def field_for(name: str) -> Field | None:
    """The field a rule names, including `detections.<detector>` (a count, 0 when absent)."""
    if name in FIELDS:
        return FIELDS[name]
    prefix, _, detector = name.partition(".")
    if prefix == "detections" and DETECTOR_ID.match(detector):
        return Field(name, "number", _detection_count(detector))
    return None


def known_field_names() -> list[str]:
    return sorted(FIELDS) + ["detections.<detector>"]
