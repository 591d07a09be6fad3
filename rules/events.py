"""The event schema shared by agent and server, and the central catalogue of event types.

Events are immutable values made at the source with a UUID, so the spool can resend them and the
collector can insert them idempotently (its first 48 bits are the time it was made: new_event_id).
They carry hashes and counts, never file contents.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Add, never rename: agents, rules and integrations depend on these names.
EVENT_TYPES: dict[str, str] = {
    "file.created": "a file appeared in a classified folder",
    "file.modified": "a file in a classified folder changed",
    "file.moved": "a file in a classified folder was renamed or moved",
    "file.deleted": "a file in a classified folder was deleted",
    "file.opened": "a file in a classified folder was opened",
    "classified.read": "a network application (browser, IM, mail, cloud-drive or transfer tool) read a file in a classified folder",
    "egress.file": "a complete file found in an egress place",
    "media.mounted": "removable media was mounted",
    "media.unmounted": "removable media was unmounted",
    "agent.started": "the agent started",
    "agent.stopped": "the agent stopped cleanly",
    "agent.error": "the agent could not do something it should have",
    "agent.overflow": "file events were lost and a rescan was started",
    "agent.gap": "a gap in the agent's event chain",
    "agent.tamper": "the agent's config or rules were changed locally, or its event chain was found broken",
    "agent.clock_skew": "the agent's clock differs from the server's",
    "agent.limit": "the agent went over its CPU or memory cap (agent.limits)",
    "agent.stalled": "the agent's pipeline finished no step for longer than server.pipeline_stall_s while its heartbeats went on",
}

MATCH_METHODS: tuple[str, ...] = ("exact", "archive", "partial")

# Not hashed into the chain: the collector stamps the agent id from the token, and an agent that
# enrols again under a new id keeps its chain.
CHAIN_EXCLUDED = ("agent_id",)


@dataclass(frozen=True)
class Match:
    method: str  # exact | archive | partial
    similarity: float = 1.0


@dataclass(frozen=True)
class Media:
    mountpoint: str
    device: str = ""
    fstype: str = ""
    label: str = ""
    serial: str = ""
    vendor: str = ""
    model: str = ""
    vendor_id: str = ""  # USB vendor id, 4 hex digits in lower case ("0781"); empty when unknown
    product_id: str = ""  # USB product id, 4 hex digits in lower case
    bus: str = ""  # usb | ata | nvme | scsi | mmc | ...; empty when unknown
    removable: bool | None = None  # the OS says the disk is removable; None when it does not say
    volume_id: str = ""  # the file system's own id (FAT/exFAT volume serial, NTFS serial, UUID)
    size_bytes: int | None = None  # the volume's (partition's) size; None when unknown

    @property
    def identity(self) -> str:
        """What the collector's allow-list patterns match, in lower case: `vendor_id:product_id:serial`
        for a medium with a hardware serial, else `vendor_id:product_id:vol:<volume_id>:<size_bytes>`
        (VOLUME_MARK): media without a serial are told apart by their file system, never all `::`."""
        if self.serial:
            return f"{self.vendor_id}:{self.product_id}:{self.serial}".lower()
        size = "" if self.size_bytes is None else str(self.size_bytes)
        return f"{self.vendor_id}:{self.product_id}:{VOLUME_MARK}{self.volume_id}:{size}".lower()


# The serial part of an identity made from the volume (no hardware serial): the collector matches
# such identities only exactly, and never one without a volume id (server/devices.py).
VOLUME_MARK = "vol:"


@dataclass(frozen=True)
class Detection:
    detector: str  # stable id, e.g. "cn_resident_id"
    count: int
    sample: str = ""  # masked, never the raw value


# File systems reached over a network: a share is an egress place, not a device to allow.
NETWORK_FSTYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre", "davfs",
    "fuse.sshfs", "sshfs", "fuse.davfs2", "fuse.rclone", "fuse.s3fs", "fuse.gvfsd-fuse",
})
INTERNAL_BUSES = frozenset({"ata", "sata", "ide", "nvme", "virtio", "pci"})


def is_portable(event: Event) -> bool:
    """Is the event's medium one a person carries away, the kind the device register allows?

    Not a network file system (by fstype, or a device named //host/share or host:/path), and not
    an internal disk (the OS says it is not removable and it sits on an internal bus). Otherwise the
    agent's judgement stands: a mount it reports as removable egress (under a mount root, or a
    disk sysfs calls removable) is portable, as is one the OS calls removable.
    """
    media = event.media
    if media is None:
        return False
    device = media.device
    if media.fstype.lower() in NETWORK_FSTYPES or device.startswith(("//", "\\\\")) or re.match(r"^[^/\\]+:/", device):
        return False
    if media.removable is False and media.bus.lower() in INTERNAL_BUSES:
        return False
    return event.egress == "removable" or media.removable is True


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    type: str
    id: str = field(default_factory=lambda: new_event_id())
    ts: str = field(default_factory=utc_now_iso)
    agent_id: str = ""
    host: str = ""
    user: str = ""
    path: str | None = None  # readable; bytes that are not UTF-8 appear as \xNN escapes
    path_b64: str | None = None  # the raw path bytes, only when they are not valid UTF-8
    dest_path: str | None = None  # file.moved: where the file went
    dest_path_b64: str | None = None
    size: int | None = None
    sha256: str | None = None
    level: str | None = None  # classification of the content, or None
    source_path: str | None = None  # the classified file this content came from
    source_path_b64: str | None = None
    register_entry: str | None = None  # the secret-register entry of the source
    match: Match | None = None
    media: Media | None = None
    egress: str | None = None  # which kind of egress place: rules.fields.EGRESS_KINDS (details["app"] names its app)
    file_type: str | None = None  # the type detected from the content (e.g. "pdf", "zip")
    type_mismatch: bool | None = None  # the extension does not fit the detected type
    detections: tuple[Detection, ...] = ()
    rule_ids: tuple[str, ...] = ()
    severity: str | None = None
    policy_version: str | None = None  # the rule set this event was evaluated under
    error: str | None = None  # why the agent could not do what it should have
    details: dict[str, Any] | None = None  # small, type-specific facts (counts, versions)
    seq: int | None = None  # the agent's event chain: 1, 2, 3, ... per agent, assigned when spooled
    prev_hash: str | None = None  # chain_digest() of the event with seq - 1; None for seq 1

    def to_dict(self) -> dict[str, Any]:
        """The event as it travels and is hashed: what dataclasses.asdict() gives, built field by
        field (asdict copies every value deeply and was a quarter of the agent's spooling time).

        The dict shares nothing mutable with the event (callers add seq and prev_hash to it), but
        copies only containers: the fields are read from the instance's own dict (in field order,
        as __init__ sets them) and the details are copied as the JSON-like values they are, not
        with copy.deepcopy (its memo made it half of to_dict's time)."""
        data = dict(self.__dict__)
        if tuple(data) != _FIELDS[Event]:  # never seen: an instance whose dict is not in field order
            data = {name: getattr(self, name) for name in _FIELDS[Event]}
        if self.match is not None:
            data["match"] = _flat(self.match)
        if self.media is not None:
            data["media"] = _flat(self.media)
            for name in LATER_MEDIA_FIELDS:  # absent unless known: an older agent's event stays as it hashed it
                if data["media"][name] in ("", None):
                    del data["media"][name]
        data["detections"] = [_flat(d) for d in self.detections]
        data["rule_ids"] = list(self.rule_ids)
        if self.details is not None:
            data["details"] = _copied(self.details)  # as asdict(): the dict shares nothing with the event
        return data

    @classmethod
    def made(cls, **fields: Any) -> Event:
        """What Event(**fields) gives, without running the frozen dataclass's __init__ (an
        object.__setattr__ for each of its 30 fields, half its cost): the defaults' dict in field
        order, a new id and time where the fields give none, the fields over them. The agent
        makes one for every file of a burst (agent/app.py). Anything __init__ would refuse (an
        unknown field, no type) or a subclass goes to __init__ itself."""
        if not FAST_MADE or cls is not Event or "type" not in fields or not _FIELD_NAMES.issuperset(fields):
            return cls(**fields)
        new = object.__new__(cls)
        state = new.__dict__
        state.update(_DEFAULTS)
        if "id" not in fields:
            state["id"] = new_event_id()
        if "ts" not in fields:
            state["ts"] = now_ms_iso()
        state.update(fields)
        return new

    def replaced(self, **changes: Any) -> Event:
        """What dataclasses.replace(self, **changes) gives, without running __init__ again: the
        instance's dict copied with the changes (Event has no __post_init__ and no checks, so both
        are the same event, equal and with the same dict). A sixth of replace's time: the agent
        stamps every event it makes."""
        unknown = changes.keys() - _FIELD_NAMES
        if unknown:
            raise TypeError(f"Event has no field {sorted(unknown)[0]!r}")
        new = object.__new__(type(self))
        state = new.__dict__
        state.update(self.__dict__)
        state.update(changes)
        return new

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        values = {f.name: data.get(f.name) for f in dataclasses.fields(cls) if f.name in data}
        if values.get("match"):
            values["match"] = Match(**values["match"])
        if values.get("media"):
            values["media"] = Media(**values["media"])
        values["detections"] = tuple(Detection(**d) for d in values.get("detections") or ())
        values["rule_ids"] = tuple(values.get("rule_ids") or ())
        return cls(**values)


_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in (Event, Match, Media, Detection)}
_FIELD_NAMES = frozenset(_FIELDS[Event])
FAST_MADE = True  # False: Event.made runs __init__ (the reference)
FAST_STAMPS = True  # False: Event.made's id and time are reference_event_id's and utc_now_iso()'s (the references)
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # RFC 9562's variant (0b10) and 2 random bits
_SECOND: tuple[int, str] = (-1, "")  # the last second now_ms_iso wrote out, and its text
_MS_BITS = (1 << 48) - 1


def new_event_id() -> str:
    """A UUID of version 7 (RFC 9562): the system clock's milliseconds since 1970 in its first 48
    bits, then 74 random bits from os.urandom. Ids made later sort later (to the millisecond), so
    a new event's id lands at the end of every unique index on ids (the agent's spool, the
    collector's events) instead of at a random place in it: on PostgreSQL, 500 new ids into an
    index of 5 million took 2.1 ms against 5.5-6.1 for version 4's random ones, and filling it
    12.7 s against 35.4 (docs/benchmarks.md). 74 random bits a millisecond keep ids unique across a
    fleet as version 4's 122 did; what the time in them tells, the event's ts says already.
    Written out directly (FAST_STAMPS): nothing shared between calls, so threads and forked
    processes draw their own."""
    ms = time.time_ns() // 1_000_000
    if not FAST_STAMPS:
        return reference_event_id(ms, os.urandom(10))
    h = os.urandom(10).hex()
    t = f"{ms & _MS_BITS:012x}"
    return f"{t[:8]}-{t[8:]}-7{h[:3]}-{_VARIANT[h[3]]}{h[4:7]}-{h[7:19]}"


def reference_event_id(ms: int, random_bytes: bytes) -> str:
    """new_event_id's id for this clock reading and these 10 random bytes, built as the UUID's
    fields (the reference): the 48 bits of time, version 7, rand_a (12 bits), the variant, rand_b
    (62 bits), the random bits taken in the order the fast path writes them."""
    bits = int.from_bytes(random_bytes[:10], "big") >> 4  # the first 19 hex digits' 76 bits
    rand_a, rand_b = bits >> 64, bits & ((1 << 62) - 1)
    value = (ms & _MS_BITS) << 80 | 7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def now_ms_iso() -> str:
    """utc_now_iso(): the system clock's time, UTC, to the millisecond (floored, as datetime.now's
    microseconds are, then isoformat's milliseconds), the date and second written once a second
    (FAST_STAMPS)."""
    if not FAST_STAMPS:
        return utc_now_iso()
    global _SECOND
    second, ns = divmod(time.time_ns(), 1_000_000_000)
    written = _SECOND
    if written[0] != second:  # a tuple swapped whole: a thread reads the old pair or the new
        written = _SECOND = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{written[1]}.{ns // 1_000_000:03d}Z"
# Event's fields in order with their defaults (type, id and ts are set by Event.made)
_DEFAULTS = {f.name: None if f.default is dataclasses.MISSING else f.default for f in dataclasses.fields(Event)}
# Media fields added after agents were in the field: written only when known, so the dict an
# event travels and is hashed as (its chain digest) is the same whether or not a side knows them.
LATER_MEDIA_FIELDS = ("volume_id", "size_bytes")


def _flat(value: Match | Media | Detection) -> dict[str, Any]:
    """A dataclass of plain values (str, int, float, bool, None) as a dict, in field order."""
    return {name: getattr(value, name) for name in _FIELDS[type(value)]}


_SCALARS = (str, int, float, bool, type(None))


def _copied(value: Any) -> Any:
    """A deep copy of JSON-like values (dicts, lists, tuples of plain values), equal to what
    copy.deepcopy gives and several times quicker; anything else goes to copy.deepcopy."""
    if isinstance(value, _SCALARS):
        return value
    if type(value) is dict:
        return {k: v if isinstance(v, _SCALARS) else _copied(v) for k, v in value.items()}
    if type(value) is list:
        return [v if isinstance(v, _SCALARS) else _copied(v) for v in value]
    if type(value) is tuple:
        return tuple(_copied(v) for v in value)
    return copy.deepcopy(value)


def canonical_json(data: dict[str, Any]) -> bytes:
    """The canonical form the event chain hashes, built from the event's dict as it travels.

    JSON (RFC 8259) with the keys of every object sorted by code point, no whitespace (separators
    `,` and `:`), strings with non-ASCII characters as themselves (not \\u escapes), floats with
    an integral value written as integers (1.0 as 1: a JSON number has one value), no NaN or
    infinity, encoded as UTF-8; the top-level keys in CHAIN_EXCLUDED are left out. The agent
    hashes what it spools; the collector hashes what it stores, which is the same dict.
    """
    kept = {k: _integral(v) for k, v in data.items() if k not in CHAIN_EXCLUDED}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _integral(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_integral(v) for v in value]
    return value


def one_shot(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """encoder.encode for the JSON-like dicts events are (the collector's stored bodies and chain
    digests, the agent's spooled events), without its per-call set-up: encode() checks for a str,
    then iterencode() builds a circular-reference memo and a float formatter and makes the C
    encoder again on every call (a micro-second of the 5-7 each body takes). Here the C encoder is
    made once, with the encoder's own settings, so the text is the one encode() writes; without a
    memo (check_circular off): an event's dict, parsed from a request or built by the agent,
    cannot hold itself (were one to, the encoder's RecursionError says so). Where the C encoder is
    missing (an interpreter without _json), encode() itself."""
    make = json.encoder.c_make_encoder
    if make is None or encoder.indent is not None:
        return encoder.encode
    strings = json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring
    c_encode = make(
        None, encoder.default, strings, None, encoder.key_separator, encoder.item_separator, encoder.sort_keys,
        encoder.skipkeys, encoder.allow_nan,
    )  # fmt: skip

    def encode(value: Any) -> str:
        return "".join(c_encode(value, 0))

    return encode


# canonical_json's text (before its UTF-8 encoding), by a C encoder made once: the agent's spool and
# the collector encode every event with it
CANONICAL_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)
canonical_text = one_shot(CANONICAL_ENCODER)


def chain_digest(data: dict[str, Any]) -> str:
    """SHA-256 (hex) of canonical_json(data): the next event's prev_hash."""
    return hashlib.sha256(canonical_json(data)).hexdigest()


def normal_ts(ts: str) -> str:
    """An ISO 8601 time as events carry it: UTC, milliseconds, Z (what the collector stores)."""
    moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
