"""Malformed requests get a 4xx with a message, never a 5xx, and store nothing.

Bodies are written as raw JSON text so that they can carry what json.dumps would never produce:
lone surrogates (\\udce9), NaN, numbers too large for any column.
"""

from __future__ import annotations

import json

import pytest

from server.models import MAX_EVENT_JSON_BYTES, MAX_EVENTS_PER_BATCH
from tests.server.factories import make_egress, make_event

RAW = "@@raw@@"


def _batch_with(field: str, raw: str) -> str:
    """One otherwise valid egress event whose `field` is the raw JSON text `raw`."""
    event = make_egress("core")
    event[field] = RAW
    return json.dumps({"events": [event]}).replace(f'"{RAW}"', raw)


def _message(response) -> str:
    """The error message(s) of a 4xx answer: FastAPI gives a string or a list of located errors."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return detail
    return "\n".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in detail)


def assert_refused(response, expected: str, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text}"
    if status is not None:
        assert response.status_code == status, response.text
    message = _message(response)
    assert expected in message, message


INVALID_BATCHES = {
    # name: (raw body, text the message must contain)
    "not json": ('{"events": [', "JSON decode error"),
    "empty body": ("", "Field required"),
    "json list": ("[]", "valid dictionary"),
    "json null": ("null", "valid dictionary"),
    "events not a list": ('{"events": "all of them"}', "events"),
    "events missing": ("{}", "events"),
    "unknown top-level key": ('{"events": [], "since": 3}', "since"),
    "event not an object": ('{"events": [42]}', "events.0"),
    "id a number": (_batch_with("id", "42"), "events.0.id"),
    "bad uuid": (_batch_with("id", '"not-a-uuid"'), "events.0.id"),
    "uuid too short": (_batch_with("id", '"8c1c7f1e-2b1a-4c55-9f4c-0c8d3b5a9e1"'), "events.0.id"),
    "id missing": (json.dumps({"events": [{"type": "file.created", "ts": "2026-03-02T08:00:00Z"}]}), "events.0.id"),
    "type a number": (_batch_with("type", "7"), "events.0.type"),
    "unknown event type": (_batch_with("type", '"file.exploded"'), "unknown event type 'file.exploded'"),
    "type case differs": (_batch_with("type", '"Egress.File"'), "unknown event type"),
    "ts not a time": (_batch_with("ts", '"yesterday"'), "events.0.ts"),
    "ts before year 1 in utc": (_batch_with("ts", '"0001-01-01T00:00:00+01:00"'), "events.0.ts"),
    "ts after year 9999 in utc": (_batch_with("ts", '"9999-12-31T23:59:59-01:00"'), "events.0.ts"),
    "size a string": (_batch_with("size", '"big"'), "events.0.size"),
    "negative size": (_batch_with("size", "-1"), "events.0.size"),
    "size beyond 64 bits": (_batch_with("size", str(2**64)), "events.0.size"),
    "size a fraction": (_batch_with("size", "1.5"), "events.0.size"),
    "sha256 too short": (_batch_with("sha256", '"' + "a" * 63 + '"'), "events.0.sha256"),
    "sha256 upper case": (_batch_with("sha256", '"' + "A" * 64 + '"'), "events.0.sha256"),
    "sha256 not hex": (_batch_with("sha256", '"' + "g" * 64 + '"'), "events.0.sha256"),
    "sha256 with newline": (_batch_with("sha256", '"' + "a" * 64 + '\\n"'), "events.0.sha256"),
    "invalid level": (_batch_with("level", '"top-secret"'), "events.0.level"),
    "level in chinese": (_batch_with("level", '"核心商业秘密"'), "events.0.level"),
    "invalid severity": (_batch_with("severity", '"urgent"'), "events.0.severity"),
    "severity a number": (_batch_with("severity", "3"), "events.0.severity"),
    "match method unknown": (_batch_with("match", '{"method": "fuzzy"}'), "events.0.match.method"),
    "similarity above 1": (_batch_with("match", '{"method": "partial", "similarity": 1.5}'), "similarity"),
    "similarity NaN": (_batch_with("match", '{"method": "partial", "similarity": NaN}'), "similarity"),
    "NaN in details": (_batch_with("details", '{"ratio": NaN}'), "finite numbers"),
    "Infinity in an extra field": (_batch_with("entropy", "Infinity"), "finite numbers"),
    "media a string": (_batch_with("media", '"usb"'), "events.0.media"),
    "media without mountpoint": (_batch_with("media", '{"device": "/dev/sdb1"}'), "mountpoint"),
    "media unknown key": (_batch_with("media", '{"mountpoint": "/m", "colour": "red"}'), "colour"),
    "detections a string": (_batch_with("detections", '"many"'), "events.0.detections"),
    "detection negative count": (_batch_with("detections", '[{"detector": "bank_card", "count": -2}]'), "count"),
    "too many detections": (
        _batch_with("detections", json.dumps([{"detector": "bank_card", "count": 1}] * 101)),
        "events.0.detections",
    ),
    "rule id a number": (_batch_with("rule_ids", "[1]"), "events.0.rule_ids.0"),
    "details a list": (_batch_with("details", "[1, 2]"), "events.0.details"),
    "details too large": (_batch_with("details", json.dumps({"blob": "x" * MAX_EVENT_JSON_BYTES})), "larger than"),
    "extra field too large": (_batch_with("notes", json.dumps("x" * (MAX_EVENT_JSON_BYTES + 1))), "larger than"),
    "host too long": (_batch_with("host", json.dumps("h" * 256)), "events.0.host"),
    "path too long": (_batch_with("path", json.dumps("/a" * 4097)), "events.0.path"),
    # NUL characters: JSON carries them, no database column stores them
    "NUL in path": (_batch_with("path", '"/media/usb/a\\u0000.docx"'), "NUL"),
    "NUL in host": (_batch_with("host", '"pc\\u0000"'), "NUL"),
    "NUL in media label": (_batch_with("media", '{"mountpoint": "/m", "label": "K\\u0000"}'), "NUL"),
    "NUL in detector": (_batch_with("detections", '[{"detector": "x\\u0000", "count": 1}]'), "NUL"),
    "NUL in details": (_batch_with("details", '{"note": "a\\u0000b"}'), "NUL"),
    "NUL in details key": (_batch_with("details", '{"a\\u0000b": 1}'), "NUL"),
    "NUL in extra field": (_batch_with("notes", '"a\\u0000b"'), "NUL"),
    # lone surrogates: valid JSON text, invalid Unicode
    "surrogate in path": (_batch_with("path", '"/media/usb/\\udce9.docx"'), "events.0.path"),
    "surrogate in source_path": (_batch_with("source_path", '"\\ud800"'), "events.0.source_path"),
    "surrogate in user": (_batch_with("user", '"zh\\udce9"'), "events.0.user"),
    "surrogate in type": (_batch_with("type", '"\\udce9"'), "events.0.type"),
    "surrogate in id": (_batch_with("id", '"\\udce9"'), "events.0.id"),
    "surrogate in ts": (_batch_with("ts", '"\\udce9"'), "events.0.ts"),
    "surrogate in level": (_batch_with("level", '"\\udce9"'), "events.0.level"),
    "surrogate in sha256": (_batch_with("sha256", '"\\udce9"'), "events.0.sha256"),
    "surrogate in media": (_batch_with("media", '{"mountpoint": "/media/\\udce9"}'), "mountpoint"),
    "surrogate in rule id": (_batch_with("rule_ids", '["\\udce9"]'), "events.0.rule_ids.0"),
    "surrogate in details": (_batch_with("details", '{"note": "\\udce9"}'), "details"),
    "surrogate in details key": (_batch_with("details", '{"\\udce9": 1}'), "details"),
    "surrogate in extra field": (_batch_with("notes", '"\\udce9"'), "extra fields"),
    "surrogate as top-level key": ('{"events": [], "\\udce9": 1}', "body"),
}


@pytest.mark.parametrize("body,expected", INVALID_BATCHES.values(), ids=INVALID_BATCHES.keys())
@pytest.mark.reliability(area="input", fault="Body not UTF-8, wrong types, unknown fields, out-of-range times, odd cursors", how="tables of cases", outcome="400/422 with a message naming the field")
def test_invalid_batch_is_refused_with_a_message(client, agent, store, body, expected):
    response = client.post(
        "/api/v1/events", content=body.encode("utf-8"), headers={**agent.headers, "Content-Type": "application/json"}
    )
    assert_refused(response, expected)
    assert store.count_events() == 0


@pytest.mark.reliability(area="input", fault="Body not UTF-8, wrong types, unknown fields, out-of-range times, odd cursors", how="tables of cases", outcome="400/422 with a message naming the field")
def test_body_that_is_not_utf8_is_refused(client, agent):
    response = client.post(
        "/api/v1/events",
        content=b'{"events": ["\xff\xfe"]}',
        headers={**agent.headers, "Content-Type": "application/json"},
    )
    assert_refused(response, "error parsing the body", 400)


@pytest.mark.reliability(area="input", fault="More events than `server.max_batch_events` (default 5,000)", how="a batch of 5,001 (and 11 with a cap of 10)", outcome="413 `batch of N events; at most M per request`, counted before the app sees the body (a byte scan, or the one-pass decode of a valid batch); nothing stored; the agent bisects a 413 batch")
def test_batch_over_the_maximum_is_refused(client, agent, store):
    batch = [make_event() for _ in range(MAX_EVENTS_PER_BATCH + 1)]
    response = client.post("/api/v1/events", json={"events": batch}, headers=agent.headers)
    assert_refused(response, f"at most {MAX_EVENTS_PER_BATCH} per request", 413)  # server/limits.py, before parsing
    assert store.count_events() == 0


def test_one_bad_event_refuses_the_whole_batch(client, agent, store):
    batch = [make_event(), make_event(size=-5), make_event()]
    response = client.post("/api/v1/events", json={"events": batch}, headers=agent.headers)
    assert_refused(response, "events.1.size", 422)
    assert store.count_events() == 0


INVALID_HEARTBEATS = {
    "hostname missing": ('{"version": "0.1.0"}', "hostname"),
    "negative spool depth": ('{"hostname": "pc", "spool_depth": -1}', "spool_depth"),
    "spool depth beyond any column": ('{"hostname": "pc", "spool_depth": ' + str(2**64) + "}", "spool_depth"),
    "spool depth a string": ('{"hostname": "pc", "spool_depth": "deep"}', "spool_depth"),
    "surrogate in hostname": ('{"hostname": "\\udce9"}', "hostname"),
    "NUL in hostname": ('{"hostname": "pc\\u0000"}', "NUL"),
    "surrogate in watched": ('{"hostname": "pc", "watched": ["/srv/\\udce9"]}', "watched"),
    "not json": ("{hostname: pc}", "JSON decode error"),
}


@pytest.mark.parametrize("body,expected", INVALID_HEARTBEATS.values(), ids=INVALID_HEARTBEATS.keys())
@pytest.mark.reliability(area="input", fault="Body not UTF-8, wrong types, unknown fields, out-of-range times, odd cursors", how="tables of cases", outcome="400/422 with a message naming the field")
def test_invalid_heartbeat_is_refused(client, agent, body, expected):
    response = client.post(
        "/api/v1/heartbeat", content=body.encode(), headers={**agent.headers, "Content-Type": "application/json"}
    )
    assert_refused(response, expected)


INVALID_ENROLMENTS = {
    "bad agent id": ('{"enroll_secret": "s", "agent_id": "pc-0042", "hostname": "pc"}', "agent_id"),
    "secret missing": ('{"agent_id": "8c1c7f1e-2b1a-4c55-9f4c-0c8d3b5a9e1d", "hostname": "pc"}', "enroll_secret"),
    "surrogate in secret": (
        '{"enroll_secret": "\\udce9", "agent_id": "8c1c7f1e-2b1a-4c55-9f4c-0c8d3b5a9e1d", "hostname": "pc"}',
        "enroll_secret",
    ),
    "surrogate in version": (
        '{"enroll_secret": "s", "agent_id": "8c1c7f1e-2b1a-4c55-9f4c-0c8d3b5a9e1d", "hostname": "pc", "version": "\\udce9"}',
        "version",
    ),
    "NUL in hostname": (
        '{"enroll_secret": "s", "agent_id": "8c1c7f1e-2b1a-4c55-9f4c-0c8d3b5a9e1d", "hostname": "p\\u0000c"}',
        "NUL",
    ),
    "unknown key": (
        '{"enroll_secret": "s", "agent_id": "8c1c7f1e-2b1a-4c55-9f4c-0c8d3b5a9e1d", "hostname": "pc", "admin": true}',
        "admin",
    ),
}


@pytest.mark.parametrize("body,expected", INVALID_ENROLMENTS.values(), ids=INVALID_ENROLMENTS.keys())
@pytest.mark.reliability(area="input", fault="Body not UTF-8, wrong types, unknown fields, out-of-range times, odd cursors", how="tables of cases", outcome="400/422 with a message naming the field")
def test_invalid_enrolment_is_refused(client, reader, body, expected):
    response = client.post("/api/v1/enroll", content=body.encode(), headers={"Content-Type": "application/json"})
    assert_refused(response, expected)
    assert client.get("/api/v1/agents", headers=reader).json()["agents"] == []


INVALID_PATCHES = {
    "unknown status": ('{"status": "closed"}', "status", 422),
    "status missing": ('{"comment": "done"}', "status", 422),
    "status a number": ('{"status": 1}', "status", 422),
    "unknown key": ('{"status": "resolved", "severity": "low"}', "severity", 422),
    "comment too long": (json.dumps({"status": "resolved", "comment": "x" * 4001}), "comment", 422),
    "surrogate in comment": ('{"status": "resolved", "comment": "\\udce9"}', "comment", 422),
    "NUL in comment": ('{"status": "resolved", "comment": "a\\u0000"}', "NUL", 422),
    "not json": ("status=resolved", "JSON decode error", 422),
}


@pytest.mark.parametrize("body,expected,status", INVALID_PATCHES.values(), ids=INVALID_PATCHES.keys())
def test_invalid_alert_update_is_refused_and_changes_nothing(client, reader, send, body, expected, status):
    send(make_egress("core"))
    (alert,) = client.get("/api/v1/alerts", headers=reader).json()["alerts"]

    response = client.patch(
        f"/api/v1/alerts/{alert['id']}", content=body.encode(), headers={**reader, "Content-Type": "application/json"}
    )

    assert_refused(response, expected, status)
    after = client.get(f"/api/v1/alerts/{alert['id']}", headers=reader).json()
    assert after["status"] == "open" and [h["action"] for h in after["history"]] == ["created"]


INVALID_QUERIES = {
    "garbage cursor": ({"cursor": "abc"}, "invalid cursor", 400),
    "negative cursor": ({"cursor": "-1"}, "invalid cursor", 400),
    "fractional cursor": ({"cursor": "1.5"}, "invalid cursor", 400),
    "empty cursor": ({"cursor": ""}, "invalid cursor", 400),
    "superscript digit cursor": ({"cursor": "²"}, "invalid cursor", 400),
    "arabic-indic digit cursor": ({"cursor": "١٢"}, "invalid cursor", 400),
    "cursor beyond 63 bits": ({"cursor": str(2**63)}, "invalid cursor", 400),
    "cursor of 20 digits": ({"cursor": "9" * 20}, "invalid cursor", 400),
    "cursor too long": ({"cursor": "1" * 33}, "cursor", 422),
    "limit 0": ({"limit": 0}, "limit", 422),
    "limit 1001": ({"limit": 1001}, "limit", 422),
    "limit negative": ({"limit": -5}, "limit", 422),
    "limit not a number": ({"limit": "ten"}, "limit", 422),
    "since garbage": ({"since": "last tuesday"}, "since", 422),
    "since before year 1 in utc": ({"since": "0001-01-01T00:00:00+01:00"}, "since", 422),
    "since after year 9999 in utc": ({"since": "9999-12-31T23:59:59-01:00"}, "since", 422),
}
INVALID_ALERT_QUERIES = {
    "unknown status": ({"status": "closed"}, "status", 422),
    "unknown severity": ({"severity": "urgent"}, "severity", 422),
    "category too long": ({"category": "c" * 65}, "category", 422),
    "category with NUL": ({"category": "classified-egress\x00"}, "category", 422),
}
INVALID_EVENT_QUERIES = {
    "type too long": ({"type": "t" * 65}, "type", 422),
    "agent id too long": ({"agent_id": "a" * 65}, "agent_id", 422),
    "type with NUL": ({"type": "egress.file\x00"}, "type", 422),
    "agent id with NUL": ({"agent_id": "abc\x00"}, "agent_id", 422),
    "type with markup": ({"type": "<script>"}, "type", 422),
}


@pytest.mark.parametrize(
    "params,expected,status",
    list(INVALID_QUERIES.values()) + list(INVALID_ALERT_QUERIES.values()),
    ids=list(INVALID_QUERIES) + list(INVALID_ALERT_QUERIES),
)
def test_invalid_alert_listing_is_refused(client, reader, params, expected, status):
    assert_refused(client.get("/api/v1/alerts", params=params, headers=reader), expected, status)


@pytest.mark.parametrize(
    "params,expected,status",
    list(INVALID_QUERIES.values()) + list(INVALID_EVENT_QUERIES.values()),
    ids=list(INVALID_QUERIES) + list(INVALID_EVENT_QUERIES),
)
@pytest.mark.reliability(area="input", fault="Body not UTF-8, wrong types, unknown fields, out-of-range times, odd cursors", how="tables of cases", outcome="400/422 with a message naming the field")
def test_invalid_event_listing_is_refused(client, reader, params, expected, status):
    assert_refused(client.get("/api/v1/events", params=params, headers=reader), expected, status)


@pytest.mark.parametrize("alert_id", ["abc", "1.5", "1e3", "٣", "0x10"])
def test_alert_id_that_is_not_a_number_is_refused(client, reader, alert_id):
    assert_refused(client.get(f"/api/v1/alerts/{alert_id}", headers=reader), "alert_id", 422)
