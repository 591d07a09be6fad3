"""The request limits hold whatever Content-Type a body declares (issue 16, item 3).

FastAPI parses a body as JSON when its type, as the email package reads it, is application/*json
(`application/json\\xa0`, `application/JSON`, `application/vnd.x+json`, ...). The limits once
looked at the type themselves, byte for byte, and skipped the nesting scan, the batch cap and the
agent's rate for every type they did not recognise as JSON: an agent sending
`Content-Type: application/json\\xa0` over a socket (or `application/json\\x1f`) was parsed as
JSON and limited by nothing: 100,000 levels reached the parser, a batch of 11 over a cap of 10 was
stored, and 41 events went in where the rate allowed 20. Now every body
under /api is scanned whatever its type, and one whose type is not exactly JSON is 415.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import uuid

import pytest
import uvicorn
from fastapi.testclient import TestClient

from server.app import create_app
from server.limits import json_shape
from tests.e2e.harness import free_port, wait_for
from tests.server.factories import ENROLL_SECRET, make_event

MAX_BATCH, RATE = 10, 2.0  # a burst of 20 events

# What an attacker tries, each of which FastAPI (or a lenient reader) may take for JSON. None: no header.
ODD_TYPES = [
    b"application/json\xa0",
    b"application/json\x1f",
    b"\xa0application/json",
    b"application/json;charset=latin-1",
    b"application/json; x=1",
    b"application/vnd.miwei+json",
    b"application/json, text/plain",
    b"text/plain",
    b"text/json",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
    b"",
    None,
]
JSON_TYPES = [b"application/json", b"Application/JSON", b"application/json; charset=utf-8", b'application/json;charset="UTF-8"']


@pytest.fixture
def limited(config, store):
    app = create_app(dataclasses.replace(config, max_batch_events=MAX_BATCH, agent_rate_limit=RATE), store)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _enroll(client) -> dict:
    body = {"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": "pc-0042"}  # the events' host
    return {"authorization": "Bearer " + client.post("/api/v1/enroll", json=body).json()["token"]}


def _headers(auth: dict, content_type: bytes | None) -> list[tuple[bytes, bytes]]:
    headers = [(k.encode(), v.encode()) for k, v in auth.items()]
    return headers if content_type is None else [*headers, (b"content-type", content_type)]


def _batch(n: int) -> bytes:
    return json.dumps({"events": [make_event() for _ in range(n)]}).encode()


@pytest.mark.parametrize("content_type", ODD_TYPES, ids=repr)
@pytest.mark.reliability(area="input", fault="A body whose Content-Type is not exactly JSON (`application/json\\xa0`, `application/JSON;charset=latin-1`, `text/plain`, none, ...)", how="100,000 levels of nesting, a batch of 11 over a cap of 10 and three batches of 10 at 2 events/s, each with 13 odd types", outcome="415 `send the body as application/json` before any parser, nothing stored (was: parsed as JSON, nesting, batch cap and rate skipped)")
def test_a_body_of_any_other_type_is_415_and_never_parsed(limited, store, content_type):
    auth = _enroll(limited)
    deep = b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    for body in (deep, _batch(MAX_BATCH + 1), *[_batch(MAX_BATCH)] * 3):
        answer = limited.post("/api/v1/events", content=body, headers=_headers(auth, content_type))
        assert answer.status_code == 415, answer.text
        assert answer.json() == {"detail": "send the body as application/json"}
    for path in ("/api/v1/heartbeat", "/api/v1/enroll"):
        assert limited.post(path, content=deep, headers=_headers(auth, content_type)).status_code == 415
    assert store.count_events() == 0


@pytest.mark.parametrize("content_type", JSON_TYPES, ids=repr)
@pytest.mark.reliability(area="input", fault="A body whose Content-Type is JSON spelled another way (`Application/JSON`, `; charset=\"UTF-8\"`)", how="100,000 levels, a batch of 11 over a cap of 10, three batches of 10 at 2 events/s", outcome="400, 413 and 429 as for `application/json`; 20 events stored")
def test_json_spelled_any_legal_way_meets_every_limit(limited, store, content_type):
    auth = _enroll(limited)
    headers = _headers(auth, content_type)
    deep = b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    assert limited.post("/api/v1/events", content=deep, headers=headers).status_code == 400
    assert limited.post("/api/v1/events", content=_batch(MAX_BATCH + 1), headers=headers).status_code == 413
    answers = [limited.post("/api/v1/events", content=_batch(MAX_BATCH), headers=headers).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    assert store.count_events() == 2 * MAX_BATCH


def test_an_empty_body_needs_no_type(limited, api_token):
    """A POST without a body (disable a rule) carries no Content-Type: that is not a reason for 415."""
    answer = limited.post("/api/v1/rules/MW-NO-SUCH-RULE/disable", headers={"Authorization": f"Bearer {api_token}"})
    assert answer.status_code != 415, answer.text


@pytest.mark.parametrize(
    "body, events",
    [
        (b'{"\\u0065vents": [1, 2]}', 2),
        (b'{"ev\\u0065nts" :\n[1]}', 1),
        (b'{"\\u0065\\u0076\\u0065\\u006e\\u0074\\u0073": [1, 2, 3]}', 3),
        (b'{"\\u0065vents": []}', 0),
        (b'["\\u0065vents", [1, 2]]', None),
        (b'{"x\\"": [1], "a": "\\u0065vents"}', None),
        (b'{"nested": {"\\u0065vents": [1, 2]}}', None),
    ],
)
def test_the_scan_reads_an_events_key_written_with_escapes(body, events):
    assert json_shape(body).events == events
    parsed = json.loads(body)
    if events is not None:
        assert len(parsed["events"]) == events


@pytest.mark.reliability(area="input", fault="Escaped `events` key (`\"\\u0065vents\"`)", how="a batch of 11 over a cap of 10 with the key written with an escape", outcome="413 like the plain key (was: the scan missed it; up to 5,000 events parsed)")
def test_an_escaped_events_key_is_counted_against_the_batch_cap(limited, store):
    auth = _enroll(limited)
    body = b'{"\\u0065vents": ' + json.dumps([make_event() for _ in range(MAX_BATCH + 1)]).encode() + b"}"
    answer = limited.post("/api/v1/events", content=body, headers=_headers(auth, b"application/json"))
    assert answer.status_code == 413, answer.text
    assert store.count_events() == 0


@pytest.mark.reliability(area="input", fault="Parallel batches from one agent", how="8 threads each sending a batch of 10 at once, 2 events/s (burst 20)", outcome="at most 20 events stored, the rest 429: the bucket is charged before the batch is parsed and settled to the accepted count after (was: all checked against a full bucket, 80 stored)")
def test_parallel_batches_cannot_spend_the_burst_twice(limited, store):
    auth = _enroll(limited)
    headers = _headers(auth, b"application/json")
    limited.post("/api/v1/heartbeat", json={"hostname": "pc-0042"}, headers=auth)  # the token is known
    bodies = [_batch(MAX_BATCH) for _ in range(8)]
    answers: list[int] = []
    start = threading.Barrier(8)

    def send(body: bytes) -> None:
        start.wait(10)
        answers.append(limited.post("/api/v1/events", content=body, headers=headers).status_code)

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(answers) == [200, 200] + [429] * 6, answers
    assert store.count_events() == 2 * MAX_BATCH


@pytest.mark.reliability(area="input", fault="A flood of invalid batches from a known agent", how="batches of 10 events that fail validation (422), at 2 events/s (burst 20)", outcome="each costs the events it carried: the third is 429 (was: rejected batches cost nothing, an agent could send them without end)")
def test_rejected_batches_still_cost_their_events(limited, store):
    auth = _enroll(limited)
    headers = _headers(auth, b"application/json")
    assert limited.post("/api/v1/heartbeat", json={"hostname": "pc-0042"}, headers=auth).status_code == 200
    invalid = json.dumps({"events": [{**make_event(), "type": "no such type!"} for _ in range(MAX_BATCH)]}).encode()
    answers = [limited.post("/api/v1/events", content=invalid, headers=headers).status_code for _ in range(3)]
    assert answers == [422, 422, 429], answers
    assert store.count_events() == 0


# --- the same over a real socket -------------------------------------------------------------


def _raw_post(port: int, path: str, headers: list[bytes], body: bytes) -> tuple[int, bytes]:
    head = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1", b"Content-Length: " + str(len(body)).encode(), b"Connection: close", *headers]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1]), reply.partition(b"\r\n\r\n")[2]


@pytest.mark.reliability(area="input", fault="A body whose Content-Type is not exactly JSON (`application/json\\xa0`, `application/JSON;charset=latin-1`, `text/plain`, none, ...)", how="raw HTTP/1.1 over a socket to uvicorn: 100,000 levels and a batch of 11 with `application/json\\xa0`", outcome="415, nothing stored")
def test_odd_type_over_a_real_socket_is_415(config, store):
    app = create_app(dataclasses.replace(config, max_batch_events=MAX_BATCH, agent_rate_limit=RATE), store)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 20, what="uvicorn to start")
        enrol = json.dumps({"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": "pc-0042"}).encode()
        status, answer = _raw_post(port, "/api/v1/enroll", [b"Content-Type: application/json"], enrol)
        assert status == 200, answer
        token = json.loads(answer)["token"]
        headers = [b"Authorization: Bearer " + token.encode(), b"Content-Type: application/json\xa0"]
        deep = b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
        assert _raw_post(port, "/api/v1/events", headers, deep)[0] == 415
        assert _raw_post(port, "/api/v1/events", headers, _batch(MAX_BATCH + 1))[0] == 415
        assert store.count_events() == 0
    finally:
        server.should_exit = True
        thread.join(10)
