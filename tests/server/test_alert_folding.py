"""A flood of repeats folds into open alerts with a few statements per batch: every group's fold
is written together, and only the matches that raise an alert are explained."""

from __future__ import annotations

import uuid

import server.alerts
from server.models import EventIn
from tests.server.factories import at, make_egress


def _batch(agent_id: str, bodies: list[dict]):
    return [EventIn(**b).to_event(agent_id) for b in bodies]


def test_repeats_of_many_groups_fold_into_their_alerts_and_only_new_alerts_are_explained(store, monkeypatch):
    store.policies.active()
    explained = []
    real = server.alerts.explain_verdict
    monkeypatch.setattr(server.alerts, "explain_verdict", lambda *a: explained.append(a[1].id) or real(*a))
    agent_id = store.enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_fold")
    users = ["zhang.san", "li.si", "wang.wu"]

    first = _batch(agent_id, [make_egress(user=u, ts=at(i)) for i in range(3) for u in users])
    assert store.ingest(first).alerts == 3
    assert sorted(explained) == sorted(e.id for e, _ in first[:3])  # the first match of each user's group
    explained.clear()

    again = _batch(agent_id, [make_egress(user=u, ts=at(60 + i)) for i in range(2) for u in users[:2]])
    assert store.ingest(again).alerts == 0
    assert explained == []  # folded: nothing new to explain

    alerts = {a["user"]: a for a in store.list_alerts().items}
    assert {u: alerts[u]["count"] for u in users} == {"zhang.san": 5, "li.si": 5, "wang.wu": 3}
    assert {u: len(alerts[u]["event_ids"]) for u in users} == {"zhang.san": 5, "li.si": 5, "wang.wu": 3}
    history = [h["action"] for h in store.get_alert(alerts["li.si"]["id"])["history"]]
    assert history == ["created", "repeated"]  # a batch folds its own repeats before inserting; the next batch folds once
    assert "li.si" in alerts["li.si"]["explanation"]
