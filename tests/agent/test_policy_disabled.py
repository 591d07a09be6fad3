"""Rules the collector switched off are not evaluated on the agent; the config's extra rule files
cannot be switched off from the collector; a bad list is refused and the rules in force stay."""

from __future__ import annotations

import copy
import json

import pytest

from agent.policy import PolicyRefused, PolicyStore
from rules.events import Event, Match
from rules.loader import default_pack_sources
from rules.policy import build_policy
from rules.worktime import WorkTime
from tests.agent.test_policy import LOCAL_RULES

OFF = ["MW-BULK-EGRESS", "MW-EGRESS-CLASSIFIED"]
DRAWING_TO_USB = Event(type="egress.file", ts="2024-05-06T02:00:00Z", path="/media/usb/a.dwg", level="core", match=Match("exact", 1.0), egress="removable")


def _payload(disabled=()) -> dict:
    return json.loads(json.dumps(build_policy(default_pack_sources(), WorkTime(), list(disabled)).to_payload()))


def test_switched_off_rules_are_not_evaluated_and_local_rules_still_are(tmp_path):
    store = PolicyStore(str(tmp_path), [("local.yaml", LOCAL_RULES)])
    store.load()
    assert store.stamp(DRAWING_TO_USB).rule_ids == ("MW-EGRESS-CLASSIFIED", "LOCAL-DWG")

    active = store.offer(_payload(OFF))

    assert active.policy.disabled == tuple(OFF) and active.version.startswith(active.policy.version + "+local.")
    assert store.stamp(DRAWING_TO_USB).rule_ids == ("LOCAL-DWG",)
    assert json.loads((tmp_path / "policy.json").read_text())["disabled"] == OFF
    restarted = PolicyStore(str(tmp_path), [("local.yaml", LOCAL_RULES)])
    restarted.load()  # from the cache: still off
    assert restarted.stamp(DRAWING_TO_USB).rule_ids == ("LOCAL-DWG",)

    store.offer(_payload())
    assert store.stamp(DRAWING_TO_USB).rule_ids == ("MW-EGRESS-CLASSIFIED", "LOCAL-DWG")


def test_a_local_rule_cannot_be_switched_off_from_the_collector(tmp_path):
    payload = copy.deepcopy(_payload())
    payload["disabled"] = ["LOCAL-DWG"]  # not a rule of the policy: the collector could not have built this
    store = PolicyStore(str(tmp_path), [("local.yaml", LOCAL_RULES)])
    before = store.load()

    with pytest.raises(PolicyRefused, match="no rule 'LOCAL-DWG' in the policy"):
        store.offer(payload)
    assert store.current is before


@pytest.mark.parametrize("disabled", ["MW-UNKNOWN-DEVICE", ["MW-EGRESS-CLASSIFIED"], ["MW-UNKNOWN-DEVICE", "MW-PII-MOBILE"], [None]])
def test_a_policy_with_a_bad_list_is_refused_and_the_rules_in_force_stay(tmp_path, disabled):
    payload = _payload()
    payload["disabled"] = disabled
    store = PolicyStore(str(tmp_path))
    before = store.load()

    with pytest.raises(PolicyRefused):
        store.offer(payload)
    assert store.current is before and store.stamp(DRAWING_TO_USB).rule_ids == ("MW-EGRESS-CLASSIFIED",)
