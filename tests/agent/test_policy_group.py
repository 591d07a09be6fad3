"""The group part of the collector's policy on the agent (agent/policy.py, rules/grouppolicy.py):
checked whole before the swap, cached for offline starts, part of the version."""

from __future__ import annotations

import json

import pytest

from agent.policy import PolicyRefused, PolicyStore
from rules.grouppolicy import GroupEgress, GroupPolicy, RegisterLocation
from rules.policy import default_policy

GROUP = GroupPolicy(
    "研发",
    (RegisterLocation(7, "泵叶轮图纸", "core", "研发部 张工", ("/home/*/研发/图纸",)),),
    (GroupEgress("/srv/out", "share", "NAS"),),
)


def _payload(group: dict | None = None) -> dict:
    return {**default_policy().to_payload(), "group": group if group is not None else GROUP.to_payload()}


def test_group_is_cached_and_in_the_version(tmp_path):
    store = PolicyStore(str(tmp_path))
    store.load()
    seen = []
    store.on_group = seen.append
    active = store.offer(_payload())
    assert active.group == GROUP and seen == [GROUP]
    assert active.collector_version == f"{default_policy().version}+g.{GROUP.version}" == active.version
    assert store.offer(_payload()) is None  # the same version: nothing to do
    again = PolicyStore(str(tmp_path)).load()  # a restart, offline
    assert again.group == GROUP and again.source == "collector"


@pytest.mark.parametrize(
    "change",
    [
        lambda g: g["register"][0].update(level="top-secret"),
        lambda g: g["register"][0].update(patterns="/home"),
        lambda g: g["egress"][0].update(kind="removable"),
        lambda g: g["register"][0].update(name="客户名单"),  # content no longer matches its version
        lambda g: g.update(settings={"heartbeat_s": 0.01}),
    ],
)
def test_a_bad_group_part_refuses_the_whole_payload(tmp_path, change):
    store = PolicyStore(str(tmp_path))
    store.load()
    store.offer(_payload())
    bad = json.loads(json.dumps(GROUP.to_payload()))
    change(bad)
    with pytest.raises(PolicyRefused, match="group"):
        store.offer(_payload(bad))
    assert store.current.group == GROUP
