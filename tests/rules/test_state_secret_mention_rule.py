"""MW-STATE-SECRET-MENTION (rules/packs/classified.yaml): a ★ form quoted or written in a sentence
(state_secret_mention) is worth a look at medium severity, apart from a marked file."""

from __future__ import annotations

import pytest

from rules.engine import EventEngine
from rules.events import Detection, Event
from rules.lint import lint
from rules.loader import default_pack_sources, load_rule_sources

RULES = load_rule_sources(default_pack_sources())


def event(type_: str = "egress.file", **counts: int) -> Event:
    return Event(
        type=type_,
        ts="2024-05-06T02:00:00Z",
        user="alice",
        path="/media/alice/KINGSTON/培训.pptx",
        detections=tuple(Detection(d, n) for d, n in counts.items()),
    )


def hits(e: Event) -> dict[str, str]:
    return {v.rule.id: v.severity for v in EventEngine(RULES, None, lambda name, value: False).matches(e)}


@pytest.mark.parametrize(
    "e",
    [
        event(state_secret_mention=1),
        event("file.created", state_secret_mention=3),
        event("file.modified", state_secret_mention=1, trade_secret_marking=2),
    ],
)
def test_a_mention_fires_at_medium_not_as_a_mark(e):
    found = hits(e)
    assert found.get("MW-STATE-SECRET-MENTION") == "medium"
    assert "MW-STATE-SECRET-MARK" not in found


@pytest.mark.parametrize(
    "e",
    [
        event(state_secret_marking=1),
        event(trade_secret_marking=1),
        event("file.opened", state_secret_mention=1),
        event("media.mounted", state_secret_mention=1),
        event(),
    ],
)
def test_the_mention_rule_stays_quiet(e):
    assert "MW-STATE-SECRET-MENTION" not in hits(e)


def test_a_marked_file_still_fires_the_critical_mark_rule():
    assert hits(event(state_secret_marking=1, state_secret_mention=1)).get("MW-STATE-SECRET-MARK") == "critical"


def test_the_proposed_rule_lints_clean():
    assert [w for w in lint(RULES) if "MW-STATE-SECRET-MENTION" in str(w)] == []
