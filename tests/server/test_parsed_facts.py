"""Correlation hits' facts are parsed once per process (server.correlation.ParsedFacts): the
answer is json.loads of the stored text, and the cache stays within its bound."""

from __future__ import annotations

import json

from server.correlation import ParsedFacts


def test_facts_are_the_parsed_text_and_parsed_once():
    parsed = ParsedFacts(max_entries=3)
    text = json.dumps({"ts": "2026-03-02T01:00:00.000Z", "size": 1.0, "fields": {"size": 12}})
    first = parsed(text)
    assert first == json.loads(text)
    assert parsed(text) is first  # the second batch does not parse it again


def test_the_cache_is_bounded():
    parsed = ParsedFacts(max_entries=3)
    texts = [json.dumps({"n": i}) for i in range(10)]
    assert [parsed(t)["n"] for t in texts] == list(range(10))
    assert len(parsed._parsed) <= 3
