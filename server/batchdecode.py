"""One typed decode of an ingest body: JSON parse, validation and the request limits' checks in
a single pass (issue 21).

A batch used to be read three times: server/limits.py's `json_shape` scanned the bytes for its
nesting depth and number of events, FastAPI parsed them with json.loads, and pydantic validated
the parsed dicts. Here pydantic-core parses and validates the bytes at once
(`EventBatch.model_validate_json`), and the limits read what they need from the result: the
number of events is the list's length, and the nesting depth is known from the model except in
the free-form parts (`details` and fields a newer agent adds), which are measured.

The scan stays for every body this pass does not settle, so each answer is the one it was:

- a body that does not validate (the reference path below answers the 422 exactly as FastAPI
  did, with json.loads and pydantic's Python-mode validation);
- a body where `"events"` appears more than once or an escaped key could spell it: JSON parsers
  keep the last of two equal keys, while the limits count the largest array (413);
- anything but a POST to /api/v1/events with the exact JSON type.

`reference_batch` is also the per-event reference path as a whole, with server.models.EventIn.
to_event and the chain digest parsed back from the body text: selected explicitly by setting
`app.state.reference_ingest` (tests/server/test_batch_ingest.py compares both paths' stored rows
and alerts on 10,000 events); the product never sets it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from server.models import EventBatch

SCOPE_KEY = "miwei.event_batch"  # the ASGI scope entry the decoded batch travels in
EVENTS_KEY = b'"events"'
# depth of an event's own object in a batch: { "events": [ { ... } ] }
EVENT_DEPTH = 3


@dataclass(frozen=True)
class Decoded:
    batch: EventBatch
    depth: int  # the body's nesting depth, as server.limits.json_shape counts it (past max_depth: stops)


def decode_batch(body: bytes, max_depth: int, escaped_key) -> Decoded | None:
    """The validated batch and its depth, or None when the scan and the reference path must
    answer (see the module docstring). `escaped_key`: server.limits' pattern for a key written
    with escapes."""
    # escaped_key is a regex tried at every quote (a millisecond for 500 events); a key written
    # with escapes has a backslash, which most batches have none of
    if body.count(EVENTS_KEY) != 1 or (b"\\" in body and escaped_key.search(body) is not None):
        return None
    try:
        batch = EventBatch.model_validate_json(body)
    except ValidationError:
        return None
    return Decoded(batch, _batch_depth(batch, max_depth))


def _batch_depth(batch: EventBatch, max_depth: int) -> int:
    """Typed fields nest at most two levels under an event (detections: a list of objects); the
    free-form ones are walked."""
    if not batch.events:
        return 2
    deepest = EVENT_DEPTH
    for event in batch.events:
        if event.detections:
            deepest = max(deepest, EVENT_DEPTH + 2)
        elif event.match is not None or event.media is not None or event.rule_ids:
            deepest = max(deepest, EVENT_DEPTH + 1)
        if event.details is not None:
            deepest = max(deepest, EVENT_DEPTH + _depth(event.details, max_depth))
        if event.model_extra:
            deepest = max(deepest, EVENT_DEPTH + max(_depth(v, max_depth) for v in event.model_extra.values()))
        if deepest > max_depth:
            return deepest
    return deepest


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value (an object or array counts one), without recursion;
    stops once past `limit`."""
    if not isinstance(value, (dict, list)):
        return 0
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return deepest


def reference_batch(body: bytes) -> EventBatch:
    """The body decoded as FastAPI decodes a model body: json.loads, then validation of the
    Python objects; errors are FastAPI's 422, located under "body"."""
    if not body:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error], body=exc.doc) from None
    except ValueError:  # not UTF-8 (UnicodeDecodeError)
        raise HTTPException(400, "There was an error parsing the body") from None
    try:
        return EventBatch.model_validate(data)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=data) from None


def openapi_body() -> dict:
    """The request body /openapi.json shows for POST /api/v1/events: the endpoint reads the batch
    this module decoded, not a body parameter FastAPI would describe (and parse) itself. The model's
    schema with its definitions written in place (they are not recursive)."""
    schema = EventBatch.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline({**defs[ref.removeprefix("#/$defs/")], **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"required": True, "content": {"application/json": {"schema": inline(schema)}}}


__all__ = ["SCOPE_KEY", "Decoded", "decode_batch", "openapi_body", "reference_batch"]
