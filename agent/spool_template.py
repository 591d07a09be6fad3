"""The events of one spool write encoded from a template: a burst's events differ in a few fields.

An `egress.file` of an opaque file differs from its neighbours in a burst only in its id, time,
path, size and digest, and the seq and prev_hash the chain gives it; its details (the writer) are
usually the same as the last event's. The canonical text the chain hashes (rules.events: sorted
keys, no whitespace) of the rest is the same, so it is made once, from the first event of the
run, with a sentinel in each slot, and cut into the text around the slots. Each later event whose
other fields are the same values of the same types (the media, match and detections the very same
objects) is its pieces with its own values put in, each written as json writes it; that is what
`agent.spool._encoded_reference` gives (tests/agent/test_spool_template.py holds them together
byte for byte). Per event that is a few C calls instead of a dict built and encoded whole: the
spool's encoding of an event of a burst, 15 -> 4 µs.

An event the template cannot take (another shape, a value it does not write itself, text that
is not UTF-8, a value JSON refuses) goes to the spool's own encoder, which answers or raises as
it always did; a run of events too unlike each other stops making templates.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring
from typing import Any

from rules.events import _FIELDS, Event, normal_ts

Encoded = tuple[str, int, str]  # body, its UTF-8 bytes, chain digest (agent.spool._encoded)

_EVENT_FIELDS = _FIELDS[Event]
_PLAIN = frozenset({str, int, bool, type(None)})
# the slots, in the order their keys sort (the canonical text's order); the rest is the template
_SLOTS = ("details", "id", "path", "prev_hash", "seq", "sha256", "size", "ts")
_SAME_OBJECTS = ("match", "media", "detections")  # the same object as the template's, or no template
_FIXED = tuple(k for k in _EVENT_FIELDS if k not in _SLOTS and k not in _SAME_OBJECTS and k != "rule_ids")
_MILLIS = frozenset(f"{i:03d}" for i in range(1000))
# True: details holding dicts of plain values (the writer's process) are recognised as the last
# details too; False: only details of plain values are (the reference of the shortcut; the
# encoding of both is held to spool._encoded_reference by test_spool_template)
FAST_NESTED_DETAILS = True
MISSES_ALLOWED = 4  # templates made this many more than the other events they served: the run is too mixed


class _Template:
    """The canonical text of one event with its slots cut out, and what an event must share
    with it to be written from it."""

    __slots__ = ("fixed", "types", "objects", "rule_ids", "pieces", "suffix", "suffix_bytes")

    def __init__(self, fixed: tuple, objects: tuple, rule_ids: tuple, pieces: tuple[str, ...], suffix: str):
        self.fixed = fixed  # the values of _FIXED, all plain (str, int, bool, None)
        self.types = tuple(map(type, fixed))  # 1 == True: equal values must also be of one type
        self.objects = objects  # match, media, detections
        self.rule_ids = rule_ids  # a tuple of str
        self.pieces = pieces  # the canonical text around the slots (one more piece than _SLOTS)
        self.suffix = suffix  # ',"agent_id":"..."}': the body is the hashed text with it appended
        self.suffix_bytes = len(suffix.encode("utf-8"))


def _parts(state: dict[str, Any]) -> tuple[tuple, tuple, Any] | None:
    """An event's fields a template holds fixed, the objects it must share, and its rule ids;
    None when one is missing (an event made otherwise than Event's constructor makes it)."""
    try:
        return tuple(map(state.__getitem__, _FIXED)), tuple(map(state.__getitem__, _SAME_OBJECTS)), state["rule_ids"]
    except KeyError:
        return None


def template_of(event: Event, sentinel_text: Callable[[dict[str, Any]], str | None]) -> _Template | None:
    """The template made from this event, or None when it is not one a template can serve.

    `sentinel_text(data)`: the canonical text of the event's dict (as the spool's fast encoder
    builds it) with each slot's value replaced by data's sentinels; None when it cannot be made."""
    state = event.__dict__
    parts = _parts(state)
    if parts is None:
        return None
    fixed, objects, rule_ids = parts
    agent_id = state["agent_id"]
    if not _PLAIN.issuperset(map(type, fixed)) or type(agent_id) is not str:
        return None
    if type(rule_ids) is not tuple or not all(type(r) is str for r in rule_ids):
        return None
    sentinels = {name: f"\x00mw-slot:{name}\x00" for name in _SLOTS}
    text = sentinel_text(sentinels)
    if text is None or not encodes_as_utf8(text) or not encodes_as_utf8(agent_id):
        return None  # a lone surrogate: every event would go to the reference, which escapes it
    pieces, rest = [], text
    for name in _SLOTS:  # the slots in the order of their keys
        written = encode_basestring(sentinels[name])
        before, found, after = rest.partition(written)
        if not found or written in after:
            return None  # a sentinel that is not where only its slot is (a value holding its text)
        pieces.append(before)
        rest = after
    return _Template(fixed, objects, rule_ids, (*pieces, rest), ',"agent_id":' + encode_basestring(agent_id) + "}")


def encodes_as_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _null_or_text(value: Any) -> str | None:
    if value is None:
        return "null"
    return encode_basestring(value) if type(value) is str else None


class _Run:
    """Encodes one write's events in order, from the last template while they fit it."""

    def __init__(
        self,
        fallback: Callable[[Event, int, str | None], Encoded],
        sentinel_text: Callable[[Event, dict[str, Any]], str | None],
        details_text: Callable[[Any], str],
    ):
        self.fallback = fallback
        self.sentinel_text = sentinel_text
        self.details_text = details_text
        self.template: _Template | None = None
        self.misses = 0  # templates made, less the events written from one
        self.seconds: set[str] = set()  # 'YYYY-MM-DDTHH:MM:SS' of times normal_ts leaves as they are
        # the last details: keys, values (dicts copied), types, text, and (index, keys, value types) of each dict value
        self.details: tuple[tuple, tuple, tuple, str, tuple] | None = None

    def encoded(self, event: Event, seq: int, prev_hash: str | None) -> Encoded:
        template = self.template
        if template is not None and self._fits(event, template):
            written = self._written(event, template, seq, prev_hash)
            if written is not None:
                self.misses -= 1  # a template made once served another event
                return written
            return self.fallback(event, seq, prev_hash)
        self.template = None
        if self.misses >= MISSES_ALLOWED:
            return self.fallback(event, seq, prev_hash)
        self.misses += 1
        template = self.template = template_of(event, lambda sentinels: self.sentinel_text(event, sentinels))
        written = None if template is None else self._written(event, template, seq, prev_hash)
        return self.fallback(event, seq, prev_hash) if written is None else written

    @staticmethod
    def _fits(event: Event, template: _Template) -> bool:
        state = event.__dict__
        parts = _parts(state)
        if parts is None:
            return False
        fixed, objects, rule_ids = parts
        if fixed != template.fixed or tuple(map(type, fixed)) != template.types:
            return False
        if not all(map(operator.is_, objects, template.objects)):
            return False
        # a tuple equal to the template's tuple of str holds the same strs (no other value equals a str)
        return rule_ids is template.rule_ids or (type(rule_ids) is tuple and rule_ids == template.rule_ids)

    def _written(self, event: Event, template: _Template, seq: int, prev_hash: str | None) -> Encoded | None:
        state = event.__dict__
        event_id, path, size, sha256 = state["id"], state["path"], state["size"], state["sha256"]
        if type(event_id) is not str or (size is not None and type(size) is not int):
            return None
        path_text, sha_text, prev_text = _null_or_text(path), _null_or_text(sha256), _null_or_text(prev_hash)
        ts = self._normal_ts(state["ts"])
        if path_text is None or sha_text is None or prev_text is None or ts is None:
            return None
        details = self._details_text(state["details"])
        if details is None:
            return None
        p = template.pieces  # joined, not %-formatted: a format string is parsed again each time
        text = "".join((
            p[0], details, p[1], encode_basestring(event_id), p[2], path_text, p[3], prev_text, p[4], int.__repr__(seq),
            p[5], sha_text, p[6], "null" if size is None else int.__repr__(size), p[7], encode_basestring(ts), p[8],
        ))  # fmt: skip
        try:
            hashed = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the reference escapes it
            return None
        body = text[:-1] + template.suffix
        return body, len(hashed) - 1 + template.suffix_bytes, hashlib.sha256(hashed).hexdigest()

    def _normal_ts(self, ts: Any) -> str | None:
        """normal_ts(ts), asked once a second of times already normal (a burst's are): a time
        whose second normal_ts left as it was, with other milliseconds, is left as it is too."""
        if type(ts) is not str:
            return None
        if len(ts) == 24 and ts[:19] in self.seconds and ts[19] == "." and ts[23] == "Z" and ts[20:23] in _MILLIS:
            return ts
        try:
            normal = normal_ts(ts)
        except Exception:  # noqa: BLE001 - the reference raises it, or encodes what it makes of it
            return None
        if normal == ts and len(ts) == 24:
            self.seconds.add(ts[:19])
        return normal

    def _details_text(self, details: Any) -> str | None:
        """The details' canonical text; the last one's again when these are the same keys in the
        same order with equal values of the same types: plain values, or dicts of them (the
        writer's process, {pid, name, exe, user}, in every event of a copy the kernel named),
        held as copies so a dict changed since is compared as it is now (FAST_NESTED_DETAILS)."""
        last = self.details
        if type(details) is dict and last is not None:
            values = tuple(details.values())
            if (
                tuple(details) == last[0]
                and values == last[1]
                and tuple(map(type, values)) == last[2]
                and all(
                    tuple(values[i]) == keys and tuple(map(type, values[i].values())) == types
                    for i, keys, types in last[4]
                )
            ):
                return last[3]
        try:
            text = self.details_text(details)
        except Exception:  # noqa: BLE001 - NaN, a value JSON refuses: the reference decides
            return None
        if type(details) is dict and all(type(k) is str for k in details):
            values = tuple(details.values())
            types = tuple(map(type, values))
            nested = tuple(i for i, t in enumerate(types) if t is dict)
            if all(t in _PLAIN or (t is dict and FAST_NESTED_DETAILS) for t in types) and all(
                all(type(k) is str for k in values[i]) and _PLAIN.issuperset(map(type, values[i].values()))
                for i in nested
            ):
                # the dicts copied: the event's own may change before the next event is encoded
                kept = tuple(dict(v) if i in nested else v for i, v in enumerate(values))
                inner = tuple((i, tuple(values[i]), tuple(map(type, values[i].values()))) for i in nested)
                self.details = (tuple(details), kept, types, text, inner)
        return text


def encoded_run(
    events: list[Event],
    seq: int,
    prev_hash: str | None,
    fallback: Callable[[Event, int, str | None], Encoded],
    sentinel_text: Callable[[Event, dict[str, Any]], str | None],
    details_text: Callable[[Any], str],
) -> Iterator[Encoded]:
    """Each event encoded as `fallback` (agent.spool._encoded) would encode it with the seqs from
    seq + 1 on, each chained to the one before it (prev_hash: the digest of the event at seq);
    one at a time, so an event that cannot be encoded raises where the reference's loop would."""
    run = _Run(fallback, sentinel_text, details_text)
    for event in events:
        seq += 1
        encoded = run.encoded(event, seq, prev_hash)
        yield encoded
        prev_hash = encoded[2]
