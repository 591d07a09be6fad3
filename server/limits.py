"""Honest limits: what the collector refuses, with which status, before any of it is parsed.

- JSON nested deeper than MAX_JSON_DEPTH is 400, found by a byte scan: Python's parser recurses
  once per level, so a body of 100,000 '[' must never reach it.
- A batch of more than `server.max_batch_events` events is 413 (the agent bisects a 413 batch).
- Each agent token has a token bucket of `server.agent_rate_limit` events/s (a burst of ten
  seconds' worth, at least one full batch): a batch the bucket cannot pay for is 429 with
  Retry-After. The bucket is charged only for batches the collector accepted (2xx), with the
  count it answered, so unknown tokens never create buckets; it lives in memory, per collector
  process (N collectors behind a load balancer let an agent through at up to N times the rate).
- A database that cannot take writes (SQLite locked, read-only, disk full or I/O error;
  PostgreSQL unreachable) is 503 with Retry-After, not 500: the agent keeps the events and retries.

The body size cap (413) is server.app.BodyLimit, which wraps this middleware directly, so what
is read here is already bounded.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from loguru import logger
from sqlalchemy import exc as sa_exc

from server.authguard import answer, bearer, digest, first_header, install_auth_guard

MAX_JSON_DEPTH = 64  # an event is at most 4 deep; a batch adds 2
DB_RETRY_AFTER_S = 5
BURST_S = 10.0  # a bucket holds this many seconds of the rate
MAX_BUCKETS = 100_000  # one per agent token seen accepting; the least recently used go first
SCAN_IN_THREAD_BYTES = 256 * 1024  # a bigger body is scanned off the event loop
INGEST_PATH = "/api/v1/events"
_BODY_METHODS = (b"POST", b"PUT", b"PATCH")
# a JSON string (escapes included) or one structural character: what a depth and element count need
# Every string, the exact string "events" captured (group 1 matches only then).
_STRING = re.compile(rb'("events")|"[^"\\]*(?:\\.[^"\\]*)*"')
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
    pieces = _STRING.split(body)  # text, string (b'"events"' or None), text, string, ...
    pieces[1::2] = [b"v" if s is None else _EVENTS_KEY for s in pieces[1::2]]  # (re.sub with a group in its template was 6x slower)
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
            now = self.clock()
            self._buckets[key] = (self._level(key, now) - cost, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)


class RequestLimits:
    """ASGI middleware: nesting (400), batch size (413) and per-agent rate (429) on JSON bodies."""

    def __init__(self, app, max_batch_events: int, agent_rate_limit: float, max_depth: int = MAX_JSON_DEPTH):
        self.app, self.max_batch_events, self.max_depth = app, max_batch_events, max_depth
        burst = max(agent_rate_limit * BURST_S, max_batch_events)
        self.buckets = TokenBuckets(agent_rate_limit, burst) if agent_rate_limit > 0 else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"].encode() not in _BODY_METHODS or not _json_body(scope):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            try:
                message = await receive()
            except Exception as exc:
                from server.app import _BodyTooLarge  # the app imports this module

                if isinstance(exc, _BodyTooLarge):
                    return  # BodyLimit, just outside us, answers the 413
                raise
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if len(body) > SCAN_IN_THREAD_BYTES:
            shape = await anyio.to_thread.run_sync(json_shape, body, self.max_depth)
        else:
            shape = json_shape(body, self.max_depth)
        if shape.depth > self.max_depth:
            return await answer(scope, receive, send, 400, f"JSON nested deeper than {self.max_depth} levels")
        is_ingest = scope["path"] == INGEST_PATH and scope["method"] == "POST"
        if is_ingest and shape.events is not None and shape.events > self.max_batch_events:
            detail = f"batch of {shape.events} events; at most {self.max_batch_events} per request"
            return await answer(scope, receive, send, 413, detail)
        key, cost = (_token_key(scope), max(1, shape.events or 0)) if is_ingest and self.buckets else (None, 0)
        if key is not None:
            wait_s = self.buckets.wait_s(key, cost)
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

        reply, accepted = b"", False

        async def charging_send(message):
            # charged with what the collector counted (accepted + duplicates), so a batch whose
            # "events" key the scan did not see (written with escapes) still pays for each event
            nonlocal reply, accepted
            if key is not None and message["type"] == "http.response.start":
                accepted = 200 <= message["status"] < 300
            elif key is not None and accepted and message["type"] == "http.response.body":
                reply += message.get("body", b"")
                if not message.get("more_body", False):
                    self.buckets.charge(key, _counted(reply, cost))
            await send(message)

        await self.app(scope, replay, charging_send)


def _counted(answer: bytes, fallback: int) -> int:
    try:
        counts = json.loads(answer)
        return max(1, int(counts["accepted"]) + int(counts["duplicates"]))
    except (ValueError, TypeError, KeyError):
        return fallback


def _json_body(scope) -> bool:
    """FastAPI parses a body as JSON when the type says JSON or is absent (forms and YAML are left alone)."""
    content_type = first_header(scope, b"content-type")
    if content_type is None:
        return True
    subtype = content_type.split(b";", 1)[0].strip().lower().rpartition(b"/")[2]
    return subtype == b"json" or subtype.endswith(b"+json")


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
    app.add_middleware(RequestLimits, max_batch_events=config.max_batch_events, agent_rate_limit=config.agent_rate_limit)
    install_auth_guard(app)  # outside RequestLimits: bad tokens are refused before a body is read
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, database_unavailable)


__all__ = ["Shape", "TokenBuckets", "RequestLimits", "install_limits", "json_shape", "database_unavailable"]
