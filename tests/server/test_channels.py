"""/api/v1/channels: who may do what, what is shown (URLs redacted), what is refused."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.notify import outbox
from server.notify.channels import ChannelSpec
from tests.server.notify_rig import captured_logs, enroll_agent, http_receiver, post_events

SECRET = "hunter2-TOKEN-abcdef"


@pytest.fixture
def make_client(config, store):
    made = []

    def build(*channels, allow_private: bool = True) -> TestClient:
        app = create_app(dataclasses.replace(config, notify=tuple(channels), notify_allow_private=allow_private), store)
        app.state.notify_poll_s = 3600.0
        client = TestClient(app)
        client.__enter__()
        made.append(client)
        return client

    yield build
    for client in made:
        client.__exit__(None, None, None)


def test_a_channel_is_created_listed_changed_and_deleted_with_its_url_redacted(make_client, reader):
    client = make_client()
    made = client.post(
        "/api/v1/channels",
        json={
            "url": f"json://ops:{SECRET}@127.0.0.1:9/hook/{SECRET}",
            "name": "SOC",
            "severities": "high",
            "categories": ["bulk-egress"],
        },
        headers=reader,
    )
    assert made.status_code == 201, made.text
    channel = made.json()
    assert channel["url"] == "json://127.0.0.1/…" and SECRET not in made.text
    assert channel["severities"] == ["critical", "high"] and channel["categories"] == ["bulk-egress"]
    assert channel["max_per_hour"] == 30 and channel["source"] == "api" and channel["created_by"] == "token:secops"
    listed = client.get("/api/v1/channels", headers=reader)
    assert [c["id"] for c in listed.json()["channels"]] == [channel["id"]] and SECRET not in listed.text

    changed = client.patch(
        f"/api/v1/channels/{channel['id']}",
        json={"severities": ["medium", "critical"], "max_per_hour": 5},
        headers=reader,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["severities"] == ["critical", "medium"] and changed.json()["max_per_hour"] == 5
    assert changed.json()["name"] == "SOC" and changed.json()["categories"] == ["bulk-egress"]
    one = client.get(f"/api/v1/channels/{channel['id']}", headers=reader)
    assert one.json()["outbox"] == {} and SECRET not in one.text

    assert client.delete(f"/api/v1/channels/{channel['id']}", headers=reader).json() == {
        "id": channel["id"],
        "deleted": True,
    }
    assert client.get(f"/api/v1/channels/{channel['id']}", headers=reader).status_code == 404
    assert client.delete(f"/api/v1/channels/{channel['id']}", headers=reader).status_code == 404


def test_config_channels_are_listed_and_read_only(make_client, reader):
    client = make_client(ChannelSpec(url=f"dingtalk://{SECRET}/", name="保密办", severities=("critical",)))
    (channel,) = client.get("/api/v1/channels", headers=reader).json()["channels"]
    assert channel["id"] == "config:0" and channel["read_only"] is True and channel["url"] == "dingtalk://…"
    assert channel["name"] == "保密办"
    assert client.patch("/api/v1/channels/config:0", json={"name": "x"}, headers=reader).status_code == 409
    assert client.delete("/api/v1/channels/config:0", headers=reader).status_code == 409


def test_a_restart_with_another_config_rewrites_the_config_channels(make_client, reader, store):
    make_client(ChannelSpec(url="json://127.0.0.1:9/a"), ChannelSpec(url="json://127.0.0.1:9/b"))
    client = make_client(ChannelSpec(url="json://127.0.0.1:9/a", max_per_hour=7))
    (channel,) = client.get("/api/v1/channels", headers=reader).json()["channels"]
    assert channel["id"] == "config:0" and channel["max_per_hour"] == 7


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"url": "bogus://x"}, 422, "unsupported notification scheme"),
        ({"url": "json://"}, 422, ""),
        ({"url": "json://127.0.0.1/h", "severities": "severe"}, 422, ""),
        ({"url": "json://127.0.0.1/h", "categories": ["Not A Category"]}, 422, ""),
        ({"url": "json://127.0.0.1/h", "max_per_hour": 0}, 422, ""),
        ({"url": "json://127.0.0.1/h", "colour": "red"}, 422, ""),
        ({"url": "x" * 3000}, 422, ""),
        ({"url": "json://127.0.0.1/h\r\nX: y"}, 422, "control characters"),
    ],
)
def test_bad_channels_are_refused_with_a_message(make_client, reader, body, status, says):
    response = make_client().post("/api/v1/channels", json=body, headers=reader)
    assert response.status_code == status, response.text
    assert says in response.text


def test_changing_a_channel_needs_an_api_token(make_client):
    client = make_client()
    assert client.get("/api/v1/channels").status_code == 401
    assert client.post("/api/v1/channels", json={"url": "json://127.0.0.1/h"}).status_code == 401
    assert (
        client.post(
            "/api/v1/channels", json={"url": "json://127.0.0.1/h"}, headers={"Authorization": "Bearer mwt_nope"}
        ).status_code
        == 401
    )


def test_an_agent_token_may_not_touch_channels(make_client):

    client = make_client()
    agent = enroll_agent(client)
    assert client.get("/api/v1/channels", headers=agent.headers).status_code == 403
    assert client.post("/api/v1/channels", json={"url": "json://127.0.0.1/h"}, headers=agent.headers).status_code == 403


def test_the_test_button_sends_now_and_reports_failure(make_client, reader):
    with http_receiver(answers=["ok", 500]) as rig, captured_logs() as logs:
        client = make_client()
        made = client.post("/api/v1/channels", json={"url": rig.url, "name": "测试通道"}, headers=reader).json()
        sent = client.post(f"/api/v1/channels/{made['id']}/test", headers=reader)
        assert sent.status_code == 200 and sent.json() == {"id": made["id"], "delivered": True}
        assert rig.hits[0].json()["message"].startswith("密卫测试消息：通道「测试通道」可以送达。")
        failed = client.post(f"/api/v1/channels/{made['id']}/test", headers=reader)
        assert failed.status_code == 502 and failed.json()["detail"] == "not delivered (the collector's log says why)"
    assert any("channel test failed" in x and "HTTP 500" in x for x in logs)  # the reason is for the log only


def test_pending_notifications_of_a_deleted_or_disabled_channel_are_dropped(make_client, reader, store):
    from tests.server.factories import make_egress

    client = make_client()
    a = client.post(
        "/api/v1/channels", json={"url": "json://127.0.0.1:9/a", "severities": "critical"}, headers=reader
    ).json()
    b = client.post(
        "/api/v1/channels", json={"url": "json://127.0.0.1:9/b", "severities": "critical"}, headers=reader
    ).json()
    post_events(client, enroll_agent(client), [make_egress("core")])
    assert (
        client.patch(f"/api/v1/channels/{a['id']}", json={"enabled": False}, headers=reader).json()["enabled"] is False
    )
    assert client.delete(f"/api/v1/channels/{b['id']}", headers=reader).status_code == 200
    rows = outbox.outbox_rows(store.engine)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"dropped"}
    assert client.app.state.notifier.run_once() == {}
