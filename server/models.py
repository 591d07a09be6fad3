"""Request bodies at the HTTP edge: strict pydantic models with bounded sizes.

Agent-supplied strings are attacker-controlled: they are length-capped, and NUL characters and
lone surrogates (which JSON can carry but no database column can store) are refused with a 422.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from rules.events import (
    CANONICAL_ENCODER,
    CHAIN_EXCLUDED,
    EVENT_TYPES,
    MATCH_METHODS,
    Detection,
    Event,
    Match,
    Media,
    _integral,
    canonical_text,
    one_shot,
)
from rules.levels import LEVELS, SEVERITIES

MAX_EVENTS_PER_BATCH = 5000
MAX_EVENT_JSON_BYTES = 64 * 1024


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (lone surrogates are not)") from None
    return value


def Text(max_length: int):  # noqa: N802 - reads as a type in the models below
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(_storable)]


def _storable_json(value: Any, what: str) -> None:
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (UnicodeEncodeError, TypeError, ValueError):
        raise ValueError(f"{what} must be plain JSON with valid Unicode strings and finite numbers") from None
    if size > MAX_EVENT_JSON_BYTES:
        raise ValueError(f"{what} is larger than {MAX_EVENT_JSON_BYTES} bytes")
    if "\\u0000" in json.dumps(value):
        raise ValueError(f"{what} must not contain NUL characters")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MatchIn(_Strict):
    method: Literal[MATCH_METHODS]  # type: ignore[valid-type]
    similarity: float = Field(1.0, ge=0.0, le=1.0)


class MediaIn(_Strict):
    mountpoint: Text(4096)
    device: Text(1024) = ""
    fstype: Text(64) = ""
    label: Text(1024) = ""
    serial: Text(1024) = ""
    vendor: Text(1024) = ""
    model: Text(1024) = ""
    vendor_id: Text(64) = ""
    product_id: Text(64) = ""
    bus: Text(64) = ""
    removable: bool | None = None
    volume_id: Text(128) = ""
    size_bytes: int | None = Field(None, ge=0, le=2**63 - 1)


class DetectionIn(_Strict):
    detector: Text(64)
    count: int = Field(ge=0, le=2**31)
    sample: Text(256) = ""


Path = Text(8192)
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class EventIn(BaseModel):
    # Fields a newer agent adds are kept (stored in the event body), within the size cap.
    model_config = ConfigDict(extra="allow")

    id: uuid.UUID
    type: Text(64)
    ts: datetime
    agent_id: Text(64) = ""
    host: Text(255) = ""
    user: Text(255) = ""
    path: Path | None = None
    path_b64: Path | None = None
    dest_path: Path | None = None
    dest_path_b64: Path | None = None
    size: int | None = Field(None, ge=0, le=2**63 - 1)
    sha256: Sha256 | None = None
    level: Literal[LEVELS] | None = None  # type: ignore[valid-type]
    source_path: Path | None = None
    source_path_b64: Path | None = None
    register_entry: Text(512) | None = None
    match: MatchIn | None = None
    media: MediaIn | None = None
    egress: Text(32) | None = None
    file_type: Text(64) | None = None
    type_mismatch: bool | None = None
    policy_version: Text(64) | None = None
    detections: list[DetectionIn] = Field(default_factory=list, max_length=100)
    rule_ids: list[Text(128)] = Field(default_factory=list, max_length=100)
    severity: Literal[SEVERITIES] | None = None  # type: ignore[valid-type]
    error: Text(2000) | None = None
    details: dict[str, Any] | None = None
    seq: int | None = Field(None, ge=1, le=2**63 - 1)  # the agent's event chain (rules.events)
    prev_hash: Sha256 | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in EVENT_TYPES:
            raise ValueError(f"unknown event type '{value}'")
        return value

    @field_validator("ts")
    @classmethod
    def _utc_in_range(cls, value: datetime) -> datetime:
        try:  # to_event() converts to UTC: 0001-01-01T00:00+01:00 has no UTC year
            utc = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
        except OverflowError:
            utc = None
        # a year of room on each side: the collector adds and takes its windows (correlation,
        # incidents, working hours in local time) to and from an event's time, and at 9999-12-31 or
        # 0001-01-01 that overflowed: a 500 for the batch, which the agent sends again and again,
        # every later event of that agent held behind it (a 422 is its one event's, put aside)
        if utc is None or not TS_EARLIEST <= utc <= TS_LATEST:
            raise ValueError("must be between years 2 and 9998 in UTC") from None
        return value

    @model_validator(mode="after")
    def _bounded(self) -> EventIn:
        if self.details is not None:
            _storable_json(self.details, "details")
        if self.model_extra:
            _storable_json(self.model_extra, "extra fields")
        return self

    def to_event(self, agent_id: str) -> tuple[Event, str]:
        """The event as stored: the caller's agent id (never the body's), ts normalised to UTC.
        The per-event reference of `stored()`: the collector's chain check then parses the body
        text again for its digest (server.chain.chain_columns)."""
        event = self._event(agent_id)
        return event, json.dumps(event_body(event, self.model_extra), ensure_ascii=False, separators=(",", ":"))

    def stored(self, agent_id: str) -> StoredEvent:
        """As to_event, with the chain digest of the body computed from the dict the body text is
        written from (json.loads(text) gives back an equal dict: strings, ints, finite floats,
        lists and str-keyed objects only), instead of parsing that text again.

        A third of the collector's CPU an event went here (docs/benchmarks.md, "Ingest: where the
        time goes"), so each step is the cheap form of the reference's: the event's instance dict
        filled at once (_made_event), the encoders made once, and the canonical form's integral
        floats looked for only where this model lets a float be (_chain_digest). The same event,
        body and digest as to_event and rules.events.chain_digest (tests/server/test_stored_event.py)."""
        event = self._made_event(agent_id)
        data = event_body(event, self.model_extra)
        body = _BODY_JSON(data) if ONE_SHOT_JSON else _BODY_JSON_REFERENCE(data)
        return StoredEvent(event, body, _chain_digest(data, self.model_extra) if event.seq is not None else None)

    def _made_event(self, agent_id: str) -> Event:
        """What _event gives, without Event.__init__: a frozen dataclass of 29 fields sets each with
        object.__setattr__, a third of the cost. Event has no __post_init__ and no checks, so an
        instance whose dict holds every field, in field order, is the same event (rules.events
        Event.replaced makes its copies so too)."""
        ts = self.ts if self.ts.tzinfo else self.ts.replace(tzinfo=UTC)
        match, media, detections, rule_ids = self.match, self.media, self.detections, self.rule_ids
        event = _new_event(Event)
        event.__dict__.update(
            type=self.type,
            id=str(self.id),
            ts=ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            agent_id=agent_id,
            host=self.host,
            user=self.user,
            path=self.path,
            path_b64=self.path_b64,
            dest_path=self.dest_path,
            dest_path_b64=self.dest_path_b64,
            size=self.size,
            sha256=self.sha256,
            level=self.level,
            source_path=self.source_path,
            source_path_b64=self.source_path_b64,
            register_entry=self.register_entry,
            match=Match(match.method, match.similarity) if match else None,
            media=_made_media(media) if media else None,
            egress=self.egress,
            file_type=self.file_type,
            type_mismatch=self.type_mismatch,
            detections=tuple(Detection(d.detector, d.count, d.sample) for d in detections) if detections else (),
            rule_ids=tuple(rule_ids) if rule_ids else (),
            severity=self.severity,
            policy_version=self.policy_version,
            error=self.error,
            details=self.details,
            seq=self.seq,
            prev_hash=self.prev_hash,
        )
        return event

    def _event(self, agent_id: str) -> Event:
        ts = self.ts if self.ts.tzinfo else self.ts.replace(tzinfo=UTC)
        ts_text = ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        match, media = self.match, self.media
        return Event(
            type=self.type,
            id=str(self.id),
            ts=ts_text,
            agent_id=agent_id,
            host=self.host,
            user=self.user,
            path=self.path,
            path_b64=self.path_b64,
            dest_path=self.dest_path,
            dest_path_b64=self.dest_path_b64,
            size=self.size,
            sha256=self.sha256,
            level=self.level,
            source_path=self.source_path,
            source_path_b64=self.source_path_b64,
            register_entry=self.register_entry,
            match=Match(match.method, match.similarity) if match else None,
            media=Media(*(getattr(media, name) for name in _MEDIA_FIELDS)) if media else None,
            egress=self.egress,
            file_type=self.file_type,
            type_mismatch=self.type_mismatch,
            policy_version=self.policy_version,
            detections=tuple(Detection(d.detector, d.count, d.sample) for d in self.detections),
            rule_ids=tuple(self.rule_ids),
            severity=self.severity,
            error=self.error,
            details=self.details,
            seq=self.seq,
            prev_hash=self.prev_hash,
        )


class StoredEvent(NamedTuple):
    """An event as the collector stores it: the event, its body text and, for a chained event,
    rules.events.chain_digest of that body (None outside any chain)."""

    event: Event
    body: str
    chain_hash: str | None


_MEDIA_FIELDS = tuple(f.name for f in dataclasses.fields(Media))
_new_event = object.__new__


# json.dumps with these arguments makes the same encoder on every call
_BODY_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# False: the reference, the encoders' own encode() (tests/server/test_stored_event.py compares)
ONE_SHOT_JSON = True
_BODY_JSON, _BODY_JSON_REFERENCE = one_shot(_BODY_ENCODER), _BODY_ENCODER.encode
_CANONICAL_JSON, _CANONICAL_JSON_REFERENCE = canonical_text, CANONICAL_ENCODER.encode
# Body keys whose values EventIn lets hold a float (match.similarity, the free-form details): the
# canonical form writes an integral float as an integer. Every other field is validated as a
# string, an int, a bool, None or a list or object of those; the extra fields are free-form too.
_FLOAT_KEYS = ("match", "details")


def _made_media(media: MediaIn) -> Media:
    """Media(*fields of the model) without the frozen __init__ (thirteen fields), as _made_event."""
    made = _new_event(Media)
    made.__dict__.update({name: getattr(media, name) for name in _MEDIA_FIELDS})
    return made


def _chain_digest(data: dict[str, Any], extra: dict[str, Any] | None) -> str:
    """rules.events.chain_digest(data) for an event body made by EventIn.stored: the same
    canonical JSON, with rules.events' float rewriting walked only where a float can be."""
    kept = data.copy()
    for name in CHAIN_EXCLUDED:
        del kept[name]
    for name in _FLOAT_KEYS:
        if kept[name] is not None:
            kept[name] = _integral(kept[name])
    if extra:
        for name in extra:
            if name in kept:
                kept[name] = _integral(kept[name])
    text = _CANONICAL_JSON(kept) if ONE_SHOT_JSON else _CANONICAL_JSON_REFERENCE(kept)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_body(event: Event, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What is stored as the event's body: the fields a newer agent added (extra), then
    `event.to_dict()` (built field by field, not with dataclasses.asdict's deep copy)."""
    data = dict(extra) if extra else {}
    data.update(event.to_dict())
    return data


class EventBatch(_Strict):
    events: list[EventIn] = Field(max_length=MAX_EVENTS_PER_BATCH)


class EnrollIn(_Strict):
    enroll_secret: Text(1024)
    agent_id: uuid.UUID
    hostname: Text(255)
    version: Text(64) = ""
    os: Text(16) | None = None  # linux | windows | macos: placement in a group (server/groups.py); older agents send none


class ChainIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    seq: int = Field(ge=0, le=2**63 - 1)  # the last seq the agent gave out
    unsent_from: int | None = Field(None, ge=1, le=2**63 - 1)  # the first seq not delivered (or explained) yet


TS_EARLIEST = datetime(2, 1, 1, tzinfo=UTC)  # an event's time (EventIn._utc_in_range)
TS_LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
MAX_EPOCH_S = 253402300799.0  # 9999-12-31T23:59:59Z: the last second a datetime can hold


class PipelineIn(BaseModel):
    """The agent's pipeline progress (agent.pipeline.Pipeline.progress)."""

    model_config = ConfigDict(extra="ignore")

    stepped_at: float = Field(ge=0, le=MAX_EPOCH_S, allow_inf_nan=False)  # agent wall clock, UTC seconds
    queued: int = Field(0, ge=0, le=2**31 - 1)  # agents.pipeline_queued is a 32-bit INTEGER


def _item_id(value: object) -> object:
    if isinstance(value, str) and not re.fullmatch(r"[1-9][0-9]{0,18}", value):
        raise ValueError("a register item id is a whole number written in digits")
    return value


MAX_INDEXED_ITEMS = 2000  # as agent/central.py's MAX_REPORTED_ITEMS
# JSON keys are text: an item id is digits only ("12", not "x", "-1", "1.5" or " 12"), 1 .. 2**63-1
ItemId = Annotated[int, BeforeValidator(_item_id), Field(ge=1, le=2**63 - 1)]
FileCount = Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    hostname: Text(255)
    version: Text(64) = ""
    os: Text(16) | None = None  # linux | windows | macos (server/groups.py)
    spool_depth: int = Field(0, ge=0, le=2**31 - 1)  # agents.spool_depth is a 32-bit INTEGER
    policy_version: Text(64) | None = None
    dead_events: int = Field(0, ge=0)
    watched: list[Text(4096)] = Field(default_factory=list, max_length=1000)
    indexed_files: int | None = Field(None, ge=0, le=2**63 - 1)  # rows in its fingerprint index (the fleet page)
    # register item id -> files its index holds under the item's folders (the register and fleet pages)
    indexed_by_item: Annotated[dict[ItemId, FileCount], Field(max_length=MAX_INDEXED_ITEMS)] | None = None
    chain: ChainIn | None = None  # the agent's event chain: judged up to what it delivered
    agent_time: datetime | None = None  # the agent's clock when it sent the heartbeat
    pipeline: PipelineIn | None = None  # when the pipeline last finished a step, how much is queued

    def agent_time_text(self) -> str | None:
        if self.agent_time is None:
            return None
        moment = self.agent_time if self.agent_time.tzinfo else self.agent_time.replace(tzinfo=UTC)
        try:
            return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        except OverflowError:
            return None


class AlertPatch(_Strict):
    status: Literal["open", "acknowledged", "resolved", "false_positive"]
    comment: Text(4000) = ""


class AlertAssign(_Strict):
    assignee: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None  # a console analyst or admin; null: nobody


class RuleFileIn(_Strict):
    # limits on count and size are checked with the rules (server/policies.py), to answer in one shape
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"), AfterValidator(_storable)]
    text: Text(4 * 1024 * 1024)


class PolicyIn(_Strict):
    files: list[RuleFileIn] = Field(max_length=1000)


def _member_value(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


MemberValue = Annotated[str, StringConstraints(max_length=200), AfterValidator(_storable), AfterValidator(_member_value)]


class MemberIn(_Strict):
    value: MemberValue
    note: Text(1000) = ""


class WatchlistIn(_Strict):
    members: list[MemberIn] = Field(max_length=10_000)


class DeviceAllowIn(_Strict):
    # the pattern's form (vendor:product:serial) is checked by server/devices.py, to answer 422 with its reason
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=1100), AfterValidator(_storable)]
    owner: Text(255) = ""
    note: Text(1000) = ""
    expires_at: datetime | None = None
