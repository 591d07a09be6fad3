"""Honest limits: what the collector refuses, with which status, before any of it is parsed.

- Every body under /api, whatever its method and declared type, is read and scanned here: FastAPI
  parses a body as JSON whenever the email package reads its type as application/*json, which a
  byte-wise test of the type cannot foresee (`application/json\\xa0` from a socket, or
  `application/json\\x1f`, was parsed and skipped every limit below). A non-empty body whose
  type is not exactly `application/json` (any ASCII case, at most `charset=utf-8`) is 415 before
  any parser sees it. Outside /api (the console's forms) a body
  is scanned whenever FastAPI or a lenient reader could take it for JSON.
- JSON nested deeper than MAX_JSON_DEPTH is 400, found by a byte scan: Python's parser recurses
  once per level, so a body of 100,000 '[' must never reach it.
- A batch of more than `server.max_batch_events` events is 413 (the agent bisects a 413 batch);
  the scan also finds an `"events"` key written with escapes (`"\\u0065vents"`).
- Each agent token has a token bucket of `server.agent_rate_limit` events/s (a burst of ten
  seconds' worth, at least one full batch): a batch the bucket cannot pay for is 429 with
  Retry-After. The events the body carries are taken from the bucket before the app parses it,
  so parallel batches cannot spend one burst twice, and settled by the answer: a 2xx pays the
  events the collector counted (accepted + duplicates), a 5xx (the collector's fault) pays nothing,
  a 401/403 drops the bucket (unknown tokens never keep one), any other refusal (422, ...) pays what
  it carried: a flood of invalid batches costs as much as a flood of valid ones. A body refused
  here (415, 400, 413) costs its events too when its token was verified recently (the positive
  cache of server/authguard.py), never creating a bucket for an unknown token. Buckets live in
  memory, per collector process (N collectors behind a load balancer let an agent through at up
  to N times the rate).
- A database that cannot take writes (SQLite locked, read-only, disk full or I/O error;
  PostgreSQL unreachable) is 503 with Retry-After, not 500: the agent keeps the events and retries.

The body size cap (413) is server.app.BodyLimit, which wraps this middleware directly, so what
is read here is already bounded.

A batch POSTed to /api/v1/events as exactly application/json is not scanned when one typed
decode settles it (server/batchdecode.py: pydantic-core parses and validates the bytes, with a
recursion limit of its own, and the number of events and the depth are read from the result);
every other body, and a batch that does not validate, is scanned as above.
"""

from __future__ import annotations

import email.message
import json
import math
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from loguru import logger
from sqlalchemy import exc as sa_exc

from server.authguard import answer, bearer, digest, first_header, install_auth_guard
from server.batchdecode import SCOPE_KEY as BATCH_SCOPE_KEY
from server.batchdecode import decode_batch

MAX_JSON_DEPTH = 64  # an event is at most 4 deep; a batch adds 2
DB_RETRY_AFTER_S = 5
BURST_S = 10.0  # a bucket holds this many seconds of the rate
MAX_BUCKETS = 100_000  # one per agent token seen accepting; the least recently used go first
SCAN_IN_THREAD_BYTES = 256 * 1024  # a bigger body is scanned off the event loop
INGEST_PATH = "/api/v1/events"
API_PREFIX = "/api/"
NOT_JSON = "send the body as application/json"
_BODY_METHODS = (b"POST", b"PUT", b"PATCH")
# Every string, the exact string "events" captured (group 1 matches only then).
_STRING = re.compile(rb'("events")|"[^"\\]*(?:\\.[^"\\]*)*"')
# The same, and a string with an escape as group 2 (it may decode to "events"): twice as slow, so
# used only when _ESCAPED_KEY finds what could be such a key (a superset: a short string without
# quotes, with a backslash in its first six bytes, before a colon).
_STRING_OR_ESCAPED = re.compile(rb'("events")|("[^"\\]*(?:\\.[^"\\]*)+")|"[^"\\]*(?:\\.[^"\\]*)*"')
_ESCAPED_KEY_MAX_BYTES = 2 + 6 * 6  # "events" with every letter written as \uXXXX
_ESCAPED_KEY = re.compile(rb'"[^"\\]{0,5}\\[^"]{1,35}"[ \t\r\n]*:')
_EVENTS_KEY, _EVENTS_OPEN, _EVENTS_EMPTY = b"\x01", b"\x02", b"\x03"
_STRUCTURE = b"[]{},:" + _EVENTS_KEY
# every byte that is not structure is part of a scalar (a number, true, false, null): `v`
_SCALARS = bytes(c if bytes((c,)) in _STRUCTURE else ord("v") for c in range(256))
_WHITESPACE = b" \t\r\n"
_OPEN, _CLOSE, _COMMA = frozenset(b"[{"), frozenset(b"]}"), ord(",")


@dataclass(frozen=True)
class Shape:
    depth: int  # the deepest nesting seen (stops counting just past the cap)
    events: int | None  # elements of the top-level "events" array, if there is one


def json_shape(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Shape:
    """Nesting depth and batch size of a JSON body without building it; malformed input is left
    to the parser, which says what is wrong with it.

    The body is first boiled down, mostly in C (re.split, bytes.replace, bytes.translate), to its
    brackets and the commas that separate elements: strings, numbers, literals, colons and
    whitespace go, and the top-level `"events": [` becomes one marker byte (another when the array
    is empty). Only that residue, about a tenth of the body, is walked in Python: walking every
    token of a 400 KB batch took 40-80 ms, a fifth of the collector's time per batch.
    """
    if _ESCAPED_KEY.search(body) is None:
        pieces = _STRING.split(body)  # text, string (b'"events"' or None), text, string, ...
        pieces[1::2] = [b"v" if s is None else _EVENTS_KEY for s in pieces[1::2]]  # (re.sub with a group in its template was 6x slower)
    else:  # text, b'"events"' or None, a string with escapes or None, text, ...
        pieces = _STRING_OR_ESCAPED.split(body)
        marks = [
            _EVENTS_KEY if plain is not None or (escaped is not None and _is_events(escaped)) else b"v"
            for plain, escaped in zip(pieces[1::3], pieces[2::3], strict=True)
        ]
        del pieces[2::3]
        pieces[1::2] = marks
    residue = b"".join(pieces).translate(_SCALARS, _WHITESPACE)  # now only []{},: the key marker and v
    residue = residue.replace(_EVENTS_KEY + b":[]", _EVENTS_EMPTY).replace(_EVENTS_KEY + b":[", _EVENTS_OPEN)
    residue = residue.translate(None, b"v:" + _EVENTS_KEY)
    depth = deepest = 0
    events = None
    counting = False  # inside the top-level events array
    commas = 0
    for c in residue:
        if c in _OPEN or c == 2 or c == 3:  # 2: "events": [   3: "events": []
            depth += 1
            deepest = max(deepest, depth)
            if depth > max_depth:
                return Shape(deepest, events)
            if c == 3:
                depth -= 1
                if depth == 1:
                    events = max(events or 0, 0)
            elif c == 2 and depth == 2:
                counting, commas = True, 0
        elif c in _CLOSE:
            if depth == 2 and counting:
                events = max(events or 0, commas + 1)
                counting = False
            depth -= 1
        elif c == _COMMA and depth == 2 and counting:
            commas += 1
    return Shape(deepest, events)


def _is_events(string: bytes) -> bool:
    """A JSON string with escapes that decodes to `events` (`"\\u0065vents"`): the parser reads it as that key."""
    if len(string) > _ESCAPED_KEY_MAX_BYTES:
        return False
    try:
        return json.loads(string) == "events"
    except ValueError:
        return False


class TokenBuckets:
    """Per-key token buckets: `rate` tokens a second up to `burst`; thread-safe."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic, max_keys: int = MAX_BUCKETS):
        self.rate, self.burst, self.clock, self.max_keys = rate, burst, clock, max_keys
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()  # key -> (level, at)
        self._lock = threading.Lock()

    def _level(self, key: bytes, now: float) -> float:
        level, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, level + (now - at) * self.rate)

    def wait_s(self, key: bytes, cost: float) -> float:
        """0 if the bucket can pay `cost` now, else the seconds until it can."""
        with self._lock:
            level = self._level(key, self.clock())
        cost = min(cost, self.burst)  # a batch bigger than the burst waits for a full bucket, not forever
        return 0.0 if level >= cost else (cost - level) / self.rate

    def charge(self, key: bytes, cost: float) -> None:
        with self._lock:
            self._set(key, self._level(key, self.clock()) - cost)

    def take(self, key: bytes, cost: float) -> float:
        """Take `cost` at once if the bucket can pay it (0.0), else the seconds until it can, taking
        nothing: one step under the lock, so parallel requests cannot all see the same full bucket."""
        with self._lock:
            now = self.clock()
            level = self._level(key, now)
            need = min(cost, self.burst)  # a batch bigger than the burst waits for a full bucket, not forever
            if level < need:
                return (need - level) / self.rate
            self._set(key, level - cost, now)
            return 0.0

    def refund(self, key: bytes, amount: float) -> None:
        """Give back part of what `take` took (negative: take more); a forgotten bucket stays forgotten."""
        with self._lock:
            if key in self._buckets:
                self._set(key, min(self.burst, self._level(key, self.clock()) + amount))

    def forget(self, key: bytes) -> None:
        with self._lock:
            self._buckets.pop(key, None)

    def _set(self, key: bytes, level: float, now: float | None = None) -> None:
        self._buckets[key] = (level, self.clock() if now is None else now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


class RequestLimits:
    """ASGI middleware: type (415), nesting (400), batch size (413) and per-agent rate (429) on bodies."""

    def __init__(
        self, app, max_batch_events: int, agent_rate_limit: float, max_depth: int = MAX_JSON_DEPTH,
        is_verified: Callable[[bytes], bool] = lambda key: False,
    ):
        self.app, self.max_batch_events, self.max_depth = app, max_batch_events, max_depth
        self.is_verified = is_verified  # a token digest auth.py verified lately (server/authguard.py)
        burst = max(agent_rate_limit * BURST_S, max_batch_events)
        self.buckets = TokenBuckets(agent_rate_limit, burst) if agent_rate_limit > 0 else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        under_api = scope["path"].startswith(API_PREFIX)
        content_type = first_header(scope, b"content-type")
        if not under_api and (scope["method"].encode() not in _BODY_METHODS or not _may_be_read_as_json(content_type)):
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            return  # the client went away, or BodyLimit (just outside us) answers the 413
        is_ingest = scope["path"] == INGEST_PATH and scope["method"] == "POST"
        shape = None
        if is_ingest and is_exactly_json(content_type) and not _reference_ingest(scope):
            # one typed decode whose result the checks below read (server/batchdecode.py); None: scan
            if len(body) > SCAN_IN_THREAD_BYTES:
                decoded = await anyio.to_thread.run_sync(decode_batch, body, self.max_depth, _ESCAPED_KEY)
            else:
                decoded = decode_batch(body, self.max_depth, _ESCAPED_KEY)
            if decoded is not None:
                shape = Shape(decoded.depth, len(decoded.batch.events))
                scope[BATCH_SCOPE_KEY] = decoded.batch
        if shape is None and len(body) > SCAN_IN_THREAD_BYTES:
            shape = await anyio.to_thread.run_sync(json_shape, body, self.max_depth)
        elif shape is None:
            shape = json_shape(body, self.max_depth)
        key = _token_key(scope) if is_ingest and self.buckets else None
        cost = min(max(1, shape.events or 0), self.max_batch_events)  # what the body carries, as far as the scan can tell
        refusal = self._refusal(under_api, body, content_type, shape, is_ingest)
        if refusal is not None:
            if key is not None and self.is_verified(key):  # a known agent's refused batch still costs its events
                self.buckets.charge(key, cost)
            return await answer(scope, receive, send, *refusal)
        if key is not None:
            wait_s = self.buckets.take(key, cost)
            if wait_s > 0:
                retry = max(1, math.ceil(wait_s))
                logger.warning("agent over its event rate events={} retry_after_s={}", cost, retry)
                detail = f"over {self.buckets.rate:g} events/s for this agent; retry in {retry} s"
                return await answer(scope, receive, send, 429, detail, {"Retry-After": str(retry)})

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if key is None:
            return await self.app(scope, replay, send)
        settle = _Settlement(self.buckets, key, cost)
        try:
            await self.app(scope, replay, settle.watching(send))
        except BaseException:
            settle.refund_all()  # the collector failed, not the agent
            raise

    def _refusal(self, under_api: bool, body: bytes, content_type: bytes | None, shape: Shape, is_ingest: bool) -> tuple[int, str] | None:
        if under_api and body and not is_exactly_json(content_type):
            return 415, NOT_JSON
        if shape.depth > self.max_depth:
            return 400, f"JSON nested deeper than {self.max_depth} levels"
        if is_ingest and shape.events is not None and shape.events > self.max_batch_events:
            return 413, f"batch of {shape.events} events; at most {self.max_batch_events} per request"
        return None


class _Settlement:
    """Settles what `take` reserved once the answer is known (see the module docstring)."""

    def __init__(self, buckets: TokenBuckets, key: bytes, reserved: int):
        self.buckets, self.key, self.reserved = buckets, key, reserved
        self.status: int | None = None
        self.settled = False
        self.reply = b""

    def watching(self, send):
        async def settling_send(message):
            if message["type"] == "http.response.start":
                self.status = message["status"]
                if not 200 <= self.status < 300:
                    self._settle_refusal()
            elif message["type"] == "http.response.body" and self.status is not None and 200 <= self.status < 300 and not self.settled:
                self.reply += message.get("body", b"")
                if not message.get("more_body", False):
                    # charged with what the collector counted (accepted + duplicates), so a batch whose
                    # "events" the scan could not count still pays for each event
                    self.settled = True
                    self.buckets.refund(self.key, self.reserved - _counted(self.reply, self.reserved))
            await send(message)

        return settling_send

    def _settle_refusal(self) -> None:
        self.settled = True
        if self.status in (401, 403):  # not an agent's token: it keeps no bucket
            self.buckets.forget(self.key)
        elif self.status >= 500:  # the collector's fault (503: the database cannot write): the agent retries
            self.buckets.refund(self.key, self.reserved)
        # any other refusal (422, 400, 413) keeps what it carried

    def refund_all(self) -> None:
        if not self.settled:
            self.settled = True
            self.buckets.refund(self.key, self.reserved)


async def _read_body(receive) -> bytes | None:
    """The whole body (BodyLimit, just outside, bounds it), or None when there is nothing to answer."""
    body, more = b"", True
    while more:
        try:
            message = await receive()
        except Exception as exc:
            from server.app import _BodyTooLarge  # the app imports this module

            if isinstance(exc, _BodyTooLarge):
                return None  # BodyLimit answers the 413
            raise
        if message["type"] != "http.request":  # the client went away
            return None
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def _counted(answer: bytes, fallback: int) -> int:
    try:
        counts = json.loads(answer)
        return max(1, int(counts["accepted"]) + int(counts["duplicates"]))
    except (ValueError, TypeError, KeyError):
        return fallback


def is_exactly_json(content_type: bytes | None) -> bool:
    """`application/json` in any ASCII case, with no parameter but `charset=utf-8`: what the agent
    and every JSON client send. Anything else (other bytes around it, other parameters, +json
    types) is refused rather than guessed at."""
    if content_type is None:
        return False
    kind, _, parameters = content_type.partition(b";")
    if kind.strip(b" \t").lower() != b"application/json":
        return False
    if not parameters.strip(b" \t"):
        return True
    name, _, value = parameters.partition(b"=")
    return name.strip(b" \t").lower() == b"charset" and value.strip(b" \t").lower() in (b"utf-8", b'"utf-8"')


def _may_be_read_as_json(content_type: bytes | None) -> bool:
    """Whether FastAPI could parse the body as JSON (none, or application/*json as the email package
    reads the type, exactly as fastapi.routing does), or a lenient reader could (a subtype ending
    in json, byte for byte): a superset, so the scan never misses what a parser reads."""
    if content_type is None:
        return True
    subtype = content_type.split(b";", 1)[0].strip().lower().rpartition(b"/")[2]
    if subtype == b"json" or subtype.endswith(b"+json"):
        return True
    message = email.message.Message()
    message["content-type"] = content_type.decode("latin-1")
    read = message.get_content_subtype()
    return read == "json" or read.endswith("json")


def _reference_ingest(scope) -> bool:
    """The app asks for the per-event reference path (server/batchdecode.py): scan, then parse."""
    return bool(getattr(getattr(scope.get("app"), "state", None), "reference_ingest", False))


def _token_key(scope) -> bytes | None:
    """The bucket key: a hash of the bearer token auth.py acts on (one per agent), never the token itself."""
    token = bearer(scope)
    return digest(token) if token else None  # no token: auth answers 401


# --- the database cannot take writes ---------------------------------------------------------

def database_unavailable(request, exc: Exception) -> JSONResponse:
    """503 + Retry-After: the events stay with the agent, which retries; the cause goes to the log."""
    cause = getattr(exc, "orig", None) or exc
    logger.error(
        "database cannot take the request path={!r} error={}: {!r}", request.url.path, type(cause).__name__, str(cause)[:300]
    )
    return JSONResponse(
        {"detail": "the database cannot take writes now; retry later"},
        status_code=503,
        headers={"Retry-After": str(DB_RETRY_AFTER_S)},
    )


UNAVAILABLE = (sa_exc.OperationalError, sa_exc.TimeoutError, sqlite3.OperationalError)


def install_limits(app: FastAPI) -> None:
    """Register the request limits, the bad-token guard (server/authguard.py) and the 503 for an
    unwritable database on the app."""
    config = app.state.config
    app.add_middleware(
        RequestLimits, max_batch_events=config.max_batch_events, agent_rate_limit=config.agent_rate_limit,
        is_verified=lambda key: app.state.auth_budget.is_verified(key),
    )
    install_auth_guard(app)  # outside RequestLimits: bad tokens are refused before a body is read
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, database_unavailable)


__all__ = ["Shape", "TokenBuckets", "RequestLimits", "install_limits", "is_exactly_json", "json_shape", "database_unavailable"]
