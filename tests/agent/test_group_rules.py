"""A group's rule files and agent limits on the agent (rules/grouppolicy.py): the rules of the
policy's files the group does not choose are off, the agent-health pack and the PC's own extra
files stay on, and the group's caps are in force over the config's `limits` until it drops them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agent.app import AgentApp
from agent.config import LimitsConfig
from agent.policy import PolicyRefused, PolicyStore
from agent.selfwatch import Caps
from rules.events import Event, Match, Media
from rules.grouppolicy import GroupPolicy
from rules.policy import default_policy

LOCAL_RULE = """
- id: FIRM-USB-ANY
  title: Anything to a stick
  category: classified-egress
  severity: low
  when:
    type: egress.file
    egress: removable
"""


def _payload(group: GroupPolicy) -> dict:
    return {**default_policy().to_payload(), "group": group.to_payload()}


def _egress() -> Event:
    return Event("egress.file", path="/media/zhang/U/泵叶轮.dwg", user="zhang", level="core", egress="removable",
                 media=Media("/media/zhang/U"), match=Match("exact", 1.0))  # fmt: skip


def _tamper() -> Event:
    return Event("agent.tamper", error="config changed", details={"kind": "config_changed"})


def test_rules_of_files_the_group_does_not_choose_are_off_and_the_agent_pack_and_local_files_stay(tmp_path):
    store = PolicyStore(str(tmp_path), local_sources=[("firm.yaml", LOCAL_RULE)])
    store.load()
    before = set(store.stamp(_egress()).rule_ids)
    assert {"MW-EGRESS-CLASSIFIED", "FIRM-USB-ANY"} <= before
    tamper_rules = set(store.stamp(_tamper()).rule_ids)
    assert tamper_rules, "the agent pack matches a tamper event"

    store.offer(_payload(GroupPolicy("前台", (), (), rule_files=("packs/reads.yaml",))))
    after = set(store.stamp(_egress()).rule_ids)
    assert "MW-EGRESS-CLASSIFIED" not in after and "FIRM-USB-ANY" in after  # the PC's own file stays
    assert set(store.stamp(_tamper()).rule_ids) == tamper_rules  # packs/agent.yaml is always in force

    store.offer(_payload(GroupPolicy("前台", (), ())))  # the group chooses no files again: all of them
    assert set(store.stamp(_egress()).rule_ids) == before


def test_a_group_naming_a_file_the_policy_lacks_changes_nothing_it_does_not_name(tmp_path):
    store = PolicyStore(str(tmp_path))
    store.load()
    store.offer(_payload(GroupPolicy("研发", (), (), rule_files=("packs/egress.yaml", "gone.yaml"))))
    assert "MW-EGRESS-CLASSIFIED" in store.stamp(_egress()).rule_ids


@pytest.mark.parametrize(
    "settings",
    [
        {"rule_files": "packs/egress.yaml"},
        {"rule_files": ["a.yaml", "a.yaml"]},
        {"rule_files": [""]},
        {"cpu_percent": 0},
        {"cpu_percent": True},
        {"memory_mb": 60.5},
        {"spool_mb": 10},
        {"nice": 5},
    ],
)
def test_a_bad_rule_file_list_or_limit_refuses_the_whole_policy(tmp_path, settings):
    store = PolicyStore(str(tmp_path))
    store.load()
    good = GroupPolicy("研发", (), (), heartbeat_s=60.0).to_payload()
    content = {k: v for k, v in good.items() if k != "version"}
    content["settings"] = {**content["settings"], **settings}
    from rules.grouppolicy import group_version

    bad = {**content, "version": group_version(content)}
    with pytest.raises(PolicyRefused, match="group.settings"):
        store.offer({**default_policy().to_payload(), "group": bad})
    assert store.current.group is None


def _wired(tmp_path, limits: LimitsConfig):
    agent = SimpleNamespace(
        reporter=SimpleNamespace(heartbeat_s=30.0),
        config=SimpleNamespace(heartbeat_s=30.0, limits=limits),
        selfwatch=SimpleNamespace(caps=Caps(cpu_percent=limits.cpu_percent, memory_mb=limits.memory_mb)),
        spool=SimpleNamespace(max_bytes=limits.spool_mb * 1024 * 1024),
        notice=SimpleNamespace(use_group=lambda severities: None),
        central=SimpleNamespace(offer=lambda group: None),
    )
    store = PolicyStore(str(tmp_path))
    store.load()
    store.on_group = lambda group: AgentApp._on_group(agent, group)
    return store, agent


def test_the_groups_limits_are_in_force_over_the_config_and_go_back_when_it_drops_them(tmp_path):
    store, agent = _wired(tmp_path, LimitsConfig(cpu_percent=25.0, memory_mb=200, spool_mb=512))
    store.offer(_payload(GroupPolicy("设计", (), (), limits=(("cpu_percent", 10.0), ("spool_mb", 64)))))
    assert (agent.selfwatch.caps.cpu_percent, agent.selfwatch.caps.memory_mb) == (10.0, 200)
    assert agent.spool.max_bytes == 64 * 1024 * 1024
    store.offer(_payload(GroupPolicy("设计", (), (), limits=(("memory_mb", 120),))))
    assert (agent.selfwatch.caps.cpu_percent, agent.selfwatch.caps.memory_mb) == (25.0, 120)
    assert agent.spool.max_bytes == 512 * 1024 * 1024
    store.offer(_payload(GroupPolicy("设计", (), (), heartbeat_s=60.0)))
    assert (agent.selfwatch.caps.cpu_percent, agent.selfwatch.caps.memory_mb) == (25.0, 200)


def test_the_cache_keeps_the_groups_files_and_limits_for_an_offline_start(tmp_path):
    group = GroupPolicy("前台", (), (), rule_files=("packs/reads.yaml",), limits=(("cpu_percent", 5.0),))
    store = PolicyStore(str(tmp_path))
    store.load()
    store.offer(_payload(group))
    restarted = PolicyStore(str(tmp_path))
    restarted.load()
    assert restarted.current.group == group
    assert "MW-EGRESS-CLASSIFIED" not in restarted.stamp(_egress()).rule_ids
