"""The rules in force on the agent: cached policy, default packs, extra files, and the swap."""

from __future__ import annotations

import json
import os
import stat

import pytest

from agent.policy import PolicyRefused, PolicyStore
from rules.errors import InvalidInput
from rules.events import Event, Match
from rules.loader import default_pack_sources
from rules.policy import build_policy, default_policy, policy_version
from rules.worktime import WorkTime

SITE_RULES = """\
- id: SITE-BIG-EGRESS
  title: A big file written to an egress place
  category: classified-egress
  severity: low
  when:
    type: egress.file
    size: {gte: 1MB}
"""
LOCAL_RULES = """\
- id: LOCAL-DWG
  title: A drawing written to an egress place, on this PC
  category: classified-egress
  severity: medium
  when:
    type: egress.file
    extension: dwg
"""


def _site_policy(worktime: WorkTime | None = None):
    return build_policy(default_pack_sources() + [("site.yaml", SITE_RULES)], worktime or WorkTime())


def _payload_with_timezone(zone: str) -> dict:
    """A payload whose version is right for its content, but whose time zone does not exist."""
    payload = _site_policy().to_payload()
    payload["worktime"]["timezone"] = zone
    sources = [(f["name"], f["text"]) for f in payload["files"]]
    payload["version"] = policy_version(sources, WorkTime.from_dict(payload["worktime"]))
    return payload


def _big_core_copy() -> Event:
    return Event(type="egress.file", path="/media/usb/a.dwg", size=2_000_000, level="core", match=Match("exact"))


def test_without_a_cache_the_agent_starts_on_the_default_packs(tmp_path):
    active = PolicyStore(str(tmp_path)).load()
    assert (active.source, active.version) == ("default packs", default_policy().version)
    assert active.stamp(_big_core_copy()).rule_ids == ("MW-EGRESS-CLASSIFIED",)


def test_a_policy_offered_is_cached_swapped_in_and_reused_after_a_restart(tmp_path):
    store = PolicyStore(str(tmp_path))
    before = store.load()
    policy = _site_policy()

    active = store.offer(policy.to_payload())

    assert active is store.current and active.version == policy.version and active.source == "collector"
    assert before.stamp(_big_core_copy()).rule_ids == ("MW-EGRESS-CLASSIFIED",)  # the old value is untouched
    stamped = store.stamp(_big_core_copy())
    assert stamped.rule_ids == ("MW-EGRESS-CLASSIFIED", "SITE-BIG-EGRESS") and stamped.policy_version == policy.version
    cache = tmp_path / "policy.json"
    assert json.loads(cache.read_text(encoding="utf-8")) == policy.to_payload()
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    assert not (tmp_path / "policy.json.tmp").exists()
    assert store.offer(policy.to_payload()) is None  # already in force

    restarted = PolicyStore(str(tmp_path)).load()
    assert (restarted.source, restarted.version) == ("collector", policy.version)


def _payload_with(**changes) -> dict:
    payload = _site_policy().to_payload()
    payload.update(changes)
    return payload


BROKEN_PAYLOADS = {
    "not a mapping": ([1, 2], "not a valid policy: TypeError"),
    "no files": ({"version": "x", "worktime": WorkTime().to_dict()}, "not a valid policy: KeyError: 'files'"),
    "version mismatch": (_payload_with(version="0000000000000000"), "policy version mismatch: announced 0000000000000000"),
    "bad rules": (
        build_policy(default_pack_sources(), WorkTime()).to_payload()
        | {"files": [{"name": "site.yaml", "text": "- id: SITE-X\n  title: x\n  category: x-y\n  severity: hihg\n  when: {type: egress.file}\n"}]},
        "invalid rules: site.yaml:4:13: SITE-X.severity: unknown severity 'hihg' (did you mean 'high'?)",
    ),
    "unknown time zone": (
        _payload_with_timezone("Mars/Olympus_Mons"),
        "invalid rules: working_time:0:0: working_time.timezone: unknown time zone 'Mars/Olympus_Mons'",
    ),
}


@pytest.mark.parametrize("name", BROKEN_PAYLOADS)
def test_a_broken_policy_is_refused_and_the_current_rules_stay(tmp_path, name):
    payload, reason = BROKEN_PAYLOADS[name]
    store = PolicyStore(str(tmp_path))
    before = store.load()
    with pytest.raises(PolicyRefused) as refused:
        store.offer(payload)
    assert reason in str(refused.value)
    assert store.current is before
    assert not (tmp_path / "policy.json").exists()


@pytest.mark.parametrize("content", [b"{not json", b'{"version": "x"}', b"\xff\xfe"])
def test_an_unusable_cache_falls_back_to_the_default_packs(tmp_path, content):
    (tmp_path / "policy.json").write_bytes(content)
    active = PolicyStore(str(tmp_path)).load()
    assert (active.source, active.version) == ("default packs", default_policy().version)


def test_extra_rule_files_apply_on_top_and_mark_the_version(tmp_path):
    store = PolicyStore(str(tmp_path), [("/etc/miwei/local.yaml", LOCAL_RULES)])
    active = store.load()
    assert active.version.startswith(default_policy().version + "+local.")
    assert active.local_files == ("/etc/miwei/local.yaml",)
    assert active.stamp(_big_core_copy()).rule_ids == ("MW-EGRESS-CLASSIFIED", "LOCAL-DWG")
    # the same texts give the same version wherever they are kept
    elsewhere = PolicyStore(str(tmp_path), [("C:/miwei/local.yaml", LOCAL_RULES)]).load()
    assert elsewhere.version == active.version

    policy = _site_policy()
    swapped = store.offer(policy.to_payload())
    assert swapped.version == policy.version + active.version[len(default_policy().version) :]
    assert store.stamp(_big_core_copy()).rule_ids == ("MW-EGRESS-CLASSIFIED", "SITE-BIG-EGRESS", "LOCAL-DWG")


def test_broken_extra_rule_files_stop_the_load_with_located_errors(tmp_path):
    broken = LOCAL_RULES.replace("extension: dwg", "extention: dwg")
    with pytest.raises(InvalidInput) as caught:
        PolicyStore(str(tmp_path), [("local.yaml", broken)]).load()
    assert [str(e) for e in caught.value.errors] == [
        "local.yaml:7:5: LOCAL-DWG.when.extention: unknown field 'extention' (did you mean 'extension'?)"
    ]


def test_a_policy_that_clashes_with_the_extra_rule_files_is_refused(tmp_path):
    clash = LOCAL_RULES.replace("LOCAL-DWG", "SITE-BIG-EGRESS")
    store = PolicyStore(str(tmp_path), [("local.yaml", clash)])
    before = store.load()
    with pytest.raises(PolicyRefused, match="conflicts with the extra rule files: .*duplicate rule id"):
        store.offer(_site_policy().to_payload())
    assert store.current is before


def test_a_cached_policy_that_clashes_with_the_extra_rule_files_gives_way_to_the_packs(tmp_path):
    store = PolicyStore(str(tmp_path))
    store.load()
    store.offer(_site_policy().to_payload())
    clash = LOCAL_RULES.replace("LOCAL-DWG", "SITE-BIG-EGRESS")
    active = PolicyStore(str(tmp_path), [("local.yaml", clash)]).load()
    assert active.source == "default packs"
    assert "SITE-BIG-EGRESS" in active.ruleset.ids
