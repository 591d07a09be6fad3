"""The group's notify_severities (rules/grouppolicy.py) on the agent: checked with the rest of the
group part, and in force over the local config's notify_user.severities (agent/notice.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from agent.app import AgentApp
from agent.config import LimitsConfig, NoticeConfig
from agent.notice import Notifier
from agent.policy import PolicyRefused, PolicyStore
from agent.selfwatch import Caps
from rules.events import Event, Media
from rules.grouppolicy import GroupPolicy
from rules.policy import default_policy


def _group(notify: tuple[str, ...] | None) -> GroupPolicy:
    return GroupPolicy("销售", (), (), notify_severities=notify)


def _payload(group: dict) -> dict:
    return {**default_policy().to_payload(), "group": group}


def _egress(severity: str) -> Event:
    return Event("egress.file", path="/media/zhang/U/客户名单.xlsx", severity=severity, user="zhang", level="core",
                 egress="removable", media=Media("/media/zhang/U"), rule_ids=("MW-EGRESS-CLASSIFIED",))  # fmt: skip


def _queued(notifier: Notifier, *severities: str) -> int:
    before = notifier._queue.qsize()
    notifier.offer([_egress(s) for s in severities])
    return notifier._queue.qsize() - before


def _wired(tmp_path, local: tuple[str, ...]) -> tuple[PolicyStore, Notifier]:
    """A policy store and a notifier joined the way agent/app.py joins them (its _on_group)."""
    notifier = Notifier(NoticeConfig(severities=local), lambda user: None, tools={})
    agent = SimpleNamespace(reporter=SimpleNamespace(heartbeat_s=30.0),
                            config=SimpleNamespace(heartbeat_s=30.0, limits=LimitsConfig()),
                            selfwatch=SimpleNamespace(caps=Caps()), spool=SimpleNamespace(max_bytes=0),
                            notice=notifier, central=SimpleNamespace(offer=lambda group: None))  # fmt: skip
    store = PolicyStore(str(tmp_path))
    store.load()
    store.on_group = lambda group: AgentApp._on_group(agent, group)
    return store, notifier


def test_the_groups_severities_override_the_local_config_and_go_back_when_it_drops_them(tmp_path):
    store, notifier = _wired(tmp_path, local=("critical",))
    assert notifier.severities == ("critical",) and _queued(notifier, "medium", "critical") == 1
    store.offer(_payload(_group(("high", "medium")).to_payload()))
    assert notifier.severities == ("high", "medium")
    assert _queued(notifier, "critical", "high", "medium", "low") == 2
    store.offer(_payload(_group(()).to_payload()))  # the group turns notices off
    assert not notifier.enabled and _queued(notifier, "critical") == 0
    store.offer(_payload(GroupPolicy("销售", (), (), heartbeat_s=60.0).to_payload()))  # no setting: the config's
    assert notifier.severities == ("critical",) and _queued(notifier, "critical") == 1


def test_a_group_without_the_setting_keeps_the_version_it_had():
    assert "notify_severities" not in GroupPolicy("g", (), (), heartbeat_s=60.0).content()["settings"]
    assert _group(("high",)).version != _group(None).version != _group(()).version


@pytest.mark.parametrize("bad", [["urgent"], "high", ["high", "high"], ["info"], [1]])
def test_a_bad_severity_refuses_the_whole_group_part(tmp_path, bad):
    store, notifier = _wired(tmp_path, local=())
    store.offer(_payload(_group(("high",)).to_payload()))
    payload = json.loads(json.dumps(_group(("high",)).to_payload()))
    payload["settings"]["notify_severities"] = bad
    with pytest.raises(PolicyRefused, match="notify_severities"):
        store.offer(_payload(payload))
    assert notifier.severities == ("high",)
