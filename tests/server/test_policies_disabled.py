"""Switching rules off for the whole policy: the API, what the collector then skips, the audit log,
the history, startup, concurrent changes, and migration 0008 up and down on both backends."""

from __future__ import annotations

import json

import pytest
from alembic import command
from sqlalchemy import inspect, select

from server.database import _alembic_config, make_engine, migrate, writing
from server.policies import PolicyBook, PolicyRefused
from server.schema import audit_log, policies
from server.store import Store
from tests.server import postgres
from tests.server.factories import AGENT_OFFLINE_S, FakeClock, alerts_of, make_egress, put_policy
from tests.server.test_policy import SITE

OFF = ["MW-BULK-EGRESS", "MW-EGRESS-CLASSIFIED"]  # the correlation rule goes with the rule it counts


def _state(client, reader) -> dict[str, dict]:
    answer = client.get("/api/v1/rules", headers=reader)
    assert answer.status_code == 200, answer.text
    return {r["id"]: r for r in answer.json()["rules"]}


def _audit(engine, action: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.actor, audit_log.c.target).where(audit_log.c.action == action).order_by(audit_log.c.id))
        return [tuple(r) for r in rows]


def test_rules_list_says_which_are_shipped_and_which_are_on(client, reader):
    put_policy(client, reader, ("site.yaml", SITE))
    rules = _state(client, reader)

    assert rules["MW-EGRESS-CLASSIFIED"] | {"title": None} == {
        "id": "MW-EGRESS-CLASSIFIED", "title": None, "title_zh": "涉密内容写入外发位置", "kind": "event", "category": "classified-egress", "severity": "by-level",
        "file": "packs/egress.yaml", "shipped": True, "enabled": True, "switched_off": False,
    }  # fmt: skip
    assert rules["MW-BULK-EGRESS"]["kind"] == "correlation"
    assert {r["shipped"] for i, r in rules.items() if i.startswith("SITE-")} == {False}


def test_put_disabled_switches_shipped_rules_off_for_agents_and_back_on(client, reader, agent, engine):
    before = client.get("/api/v1/policy", headers=agent.headers).json()

    answer = client.put("/api/v1/rules/disabled", json={"rule_ids": ["MW-EGRESS-CLASSIFIED", "MW-BULK-EGRESS"]}, headers=reader)

    assert answer.status_code == 200, answer.text
    assert answer.json()["changed"] is True and answer.json()["disabled"] == OFF
    payload = client.get("/api/v1/policy", headers=agent.headers).json()
    assert payload["version"] == answer.json()["version"] != before["version"]  # agents see a new version
    assert payload["disabled"] == OFF and payload["files"] == before["files"]
    rules = _state(client, reader)
    assert (rules["MW-EGRESS-CLASSIFIED"]["enabled"], rules["MW-EGRESS-CLASSIFIED"]["switched_off"]) == (False, True)
    assert _audit(engine, "policy.rule_disabled") == [("token:secops", "rule:MW-BULK-EGRESS"), ("token:secops", "rule:MW-EGRESS-CLASSIFIED")]

    again = client.put("/api/v1/rules/disabled", json={"rule_ids": OFF}, headers=reader)
    assert again.json()["changed"] is False  # the same list: no new version

    back = client.put("/api/v1/rules/disabled", json={"rule_ids": []}, headers=reader)
    assert back.json()["changed"] is True and back.json()["version"] == before["version"]
    assert _audit(engine, "policy.rule_enabled") == [("token:secops", "rule:MW-BULK-EGRESS"), ("token:secops", "rule:MW-EGRESS-CLASSIFIED")]
    history = client.get("/api/v1/policy/history", headers=reader).json()["policies"]
    assert [h["disabled"] for h in history[:2]] == [[], OFF]


def test_the_collector_raises_no_alert_for_a_switched_off_rule(client, reader, send):
    assert client.put("/api/v1/rules/disabled", json={"rule_ids": OFF}, headers=reader).status_code == 200
    send(*[make_egress("core", path=f"/media/usb/{i}.dwg") for i in range(25)])  # would also be bulk egress
    assert alerts_of(client, reader) == []

    assert client.post("/api/v1/rules/MW-EGRESS-CLASSIFIED/enable", headers=reader).status_code == 200
    send(make_egress("core", path="/media/usb/after.dwg"))
    assert [a["rule_id"] for a in alerts_of(client, reader)] == ["MW-EGRESS-CLASSIFIED"]


def test_a_switched_off_absence_rule_raises_no_offline_alert(client, reader, agent, store, clock):
    assert client.post("/api/v1/heartbeat", json={"hostname": "pc-0042"}, headers=agent.headers).status_code == 200
    assert client.post("/api/v1/rules/MW-AGENT-OFFLINE/disable", headers=reader).status_code == 200
    clock.advance(AGENT_OFFLINE_S + 1)
    assert store.check_absence(AGENT_OFFLINE_S) == 0
    assert client.post("/api/v1/rules/MW-AGENT-OFFLINE/enable", headers=reader).status_code == 200
    assert store.check_absence(AGENT_OFFLINE_S) == 1


def test_disable_and_enable_one_rule(client, reader, engine):
    assert client.post("/api/v1/rules/MW-UNKNOWN-DEVICE/disable", headers=reader).json()["disabled"] == ["MW-UNKNOWN-DEVICE"]
    assert client.post("/api/v1/rules/MW-PII-MOBILE/disable", headers=reader).json()["disabled"] == ["MW-PII-MOBILE", "MW-UNKNOWN-DEVICE"]
    answer = client.post("/api/v1/rules/MW-UNKNOWN-DEVICE/enable", headers=reader)
    assert answer.json() | {"version": None} == {"version": None, "changed": True, "disabled": ["MW-PII-MOBILE"]}
    assert client.post("/api/v1/rules/MW-UNKNOWN-DEVICE/enable", headers=reader).json()["changed"] is False
    assert _audit(engine, "policy.rule_disabled") == [("token:secops", "rule:MW-UNKNOWN-DEVICE"), ("token:secops", "rule:MW-PII-MOBILE")]
    assert _audit(engine, "policy.rule_enabled") == [("token:secops", "rule:MW-UNKNOWN-DEVICE")]


def test_unknown_and_counted_rules_are_refused_and_nothing_changes(client, reader, store):
    before = store.policies.active().version

    unknown = client.put("/api/v1/rules/disabled", json={"rule_ids": ["MW-UNKNOWN-DEVICE", "MW-NO-SUCH-RULE"]}, headers=reader)
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0].startswith("policy:0:0: disabled[1]: no rule 'MW-NO-SUCH-RULE' in the policy")
    counted = client.put("/api/v1/rules/disabled", json={"rule_ids": ["MW-EGRESS-CLASSIFIED"]}, headers=reader)
    assert counted.status_code == 400 and "counted by MW-BULK-EGRESS, which stays on" in counted.json()["errors"][0]
    assert client.post("/api/v1/rules/MW-NO-SUCH-RULE/disable", headers=reader).status_code == 404
    assert client.post("/api/v1/rules/MW-NO-SUCH-RULE/enable", headers=reader).status_code == 404
    one = client.post("/api/v1/rules/MW-CLASSIFIED-REMOVED/disable", headers=reader)
    assert one.status_code == 409 and one.json()["counted_by"] == ["MW-MASS-DELETION"]
    for body in ({"rule_ids": ["lower-case"]}, {"rule_ids": "MW-UNKNOWN-DEVICE"}, {"rule_ids": []} | {"extra": 1}, {"rule_ids": ["MW-X"] * 1001}):
        assert client.put("/api/v1/rules/disabled", json=body, headers=reader).status_code == 422, body
    assert client.post("/api/v1/rules/not-an-id/disable", headers=reader).status_code == 422
    assert store.policies.active().version == before


def test_switching_off_a_correlation_rule_then_its_counted_rule_works_in_that_order(client, reader):
    assert client.post("/api/v1/rules/MW-MASS-DELETION/disable", headers=reader).status_code == 200
    assert client.post("/api/v1/rules/MW-CLASSIFIED-REMOVED/disable", headers=reader).status_code == 200
    # the correlation rule cannot come back on while the rule it counts stays off
    refused = client.put("/api/v1/rules/disabled", json={"rule_ids": ["MW-CLASSIFIED-REMOVED"]}, headers=reader)
    assert refused.status_code == 400 and "MW-MASS-DELETION off too, or MW-CLASSIFIED-REMOVED on" in refused.json()["errors"][0]


def test_agent_tokens_cannot_switch_rules(client, agent):
    assert client.put("/api/v1/rules/disabled", json={"rule_ids": []}, headers=agent.headers).status_code == 403
    assert client.post("/api/v1/rules/MW-UNKNOWN-DEVICE/disable", headers=agent.headers).status_code == 403
    assert client.get("/api/v1/rules", headers=agent.headers).status_code == 403


def test_uploads_and_restarts_keep_the_list(client, reader, store, config):
    assert client.post("/api/v1/rules/MW-UNKNOWN-DEVICE/disable", headers=reader).status_code == 200
    put_policy(client, reader, ("site.yaml", SITE))
    assert store.policies.active().disabled == ("MW-UNKNOWN-DEVICE",)
    restarted = Store(store.engine, clock=store.clock)
    assert restarted.policies.activate_at_startup(config.working_time).disabled == ("MW-UNKNOWN-DEVICE",)


def test_a_switched_off_rule_that_is_gone_is_dropped_from_the_list(client, reader, store):
    put_policy(client, reader, ("site.yaml", SITE))
    site_rule = next(r for r in store.policies.active().ruleset.ids if r.startswith("SITE-"))
    assert client.post(f"/api/v1/rules/{site_rule}/disable", headers=reader).status_code == 200
    assert site_rule in store.policies.active().disabled

    put_policy(client, reader)  # the file with the rule removed

    assert site_rule not in store.policies.active().disabled


def test_a_change_is_rebuilt_on_a_policy_activated_while_it_was_built(engine, clock, config):
    """Two collectors: one uploads a file while the other switches a rule off; both changes stay."""
    here, there = PolicyBook(engine, clock), PolicyBook(engine, clock)
    here.activate_at_startup(config.working_time)
    calls = []

    def switch_off(current):
        if not calls:  # the other collector's upload lands after this change read the active policy
            there.propose([("site.yaml", SITE)], config.working_time, "token:other")
        calls.append(current)
        return sorted({*current, "MW-UNKNOWN-DEVICE"})

    proposal = here.set_disabled(switch_off, "token:here")

    assert len(calls) == 2 and proposal.changed
    active = here.active()
    assert active.disabled == ("MW-UNKNOWN-DEVICE",) and "site.yaml" in dict(active.sources)
    assert there.active().version == active.version


def test_a_refused_switch_raises_with_located_errors(store):
    with pytest.raises(PolicyRefused) as refused:
        store.policies.set_disabled(lambda current: ["MW-NOPE-NOPE"], "token:x")
    assert refused.value.errors[0].startswith("policy:0:0: disabled[0]: no rule 'MW-NOPE-NOPE'")


# --- migration 0008 ---------------------------------------------------------------------------


def _up_and_down(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate(engine)
        book = PolicyBook(engine, FakeClock())
        book.set_disabled(lambda current: ["MW-UNKNOWN-DEVICE"], "token:x")
        assert "disabled" in {c["name"] for c in inspect(engine).get_columns("policies")}
        cfg = _alembic_config()
        with writing(engine) as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007")
        assert "disabled" not in {c["name"] for c in inspect(engine).get_columns("policies")}
        with engine.connect() as conn:
            assert conn.execute(select(policies.c.id)).all()  # the rows stay, without the list
        with writing(engine) as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with engine.connect() as conn:
            assert conn.execute(select(policies.c.disabled)).scalars().all() == [None]
        assert PolicyBook(engine, book.clock).active().disabled == ()  # NULL: nothing switched off
    finally:
        engine.dispose()


def test_migration_0008_goes_up_and_down_on_sqlite(tmp_path):
    _up_and_down(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.fixture(scope="module")
def cluster():
    with postgres.running() as cluster:
        yield cluster


def test_migration_0008_goes_up_and_down_on_postgresql(cluster):
    with postgres.fresh_database(cluster) as url:
        _up_and_down(url)


def test_stored_lists_are_json(engine, store):
    store.policies.set_disabled(lambda current: ["MW-UNKNOWN-DEVICE"], "token:x")
    with engine.connect() as conn:
        stored = conn.execute(select(policies.c.disabled).order_by(policies.c.id.desc())).scalar()
    assert json.loads(stored) == ["MW-UNKNOWN-DEVICE"]
