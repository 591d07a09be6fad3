"""Partial-copy lineage end to end: edited, reordered copies of classified documents saved in
another format under another name on the stick are traced to their source (match.method
partial) and raise classified-egress; a document of the same firm that copies nothing does not."""

from __future__ import annotations

import random

import pytest

from tests.agent.content import lineage_corpus as corpus
from tests.e2e.conftest import copy
from tests.e2e.harness import wait_for

pytestmark = pytest.mark.e2e


def test_edited_partial_copies_in_other_formats_are_traced_to_their_sources(deployment, classified, tmp_path):
    d = deployment
    rng = random.Random(2026)
    zh, en = corpus.document(rng, "zh", 5000), corpus.document(rng, "en", 5000)
    sources = {
        "zh": corpus.write(zh, classified["formulas"] / "叶轮铸造工艺规程", "docx"),
        "en": corpus.write(en, classified["formulas"] / "impeller-casting-procedure", "docx"),
    }
    d.start_server()
    d.start_agent()  # indexes the classified folders first

    staging = tmp_path / "staging"  # written outside the watched places, then copied in whole
    staging.mkdir()
    # about 60% of each source's body kept, reordered, edited, new text inserted, another format
    copies = {
        "zh": corpus.write(corpus.derive(random.Random(1), zh, 0.6), staging / "zh", "gbk"),
        "en": corpus.write(corpus.derive(random.Random(2), en, 0.6), staging / "en", "pdf"),
    }
    names = {"zh": d.usb / "周报素材.txt", "en": d.usb / "notes-for-supplier.pdf"}
    unrelated = corpus.document(random.Random(3), "zh", 5000)  # the same header and footer, other text
    other = corpus.write(unrelated, staging / "other", "txt")
    for lang, path in copies.items():
        copy(path, names[lang])
    copy(other, d.usb / "车间通知.txt")

    alerts = wait_for(lambda: (a := d.alerts(category="classified-egress")) and len(a) >= 2 and a, 20, what="two alerts")
    events = {e["path"]: e for a in alerts for e in d.get(f"/api/v1/alerts/{a['id']}")["events"]}
    assert set(events) == {str(p) for p in names.values()}
    for lang, path in names.items():
        event = events[str(path)]
        assert event["match"]["method"] == "partial"
        assert 0.3 < event["match"]["similarity"] < 1.0, event["match"]
        assert event["source_path"] == str(sources[lang])
        assert event["level"] == "important" and event["register_entry"] == "Formulas"
    assert {a["severity"] for a in alerts} == {"high"}

    wait_for(
        lambda: any(e["path"] == str(d.usb / "车间通知.txt") for e in d.get("/api/v1/events", type="egress.file")["events"]),
        20,
        what="the unrelated document's event",
    )
    [event] = [e for e in d.get("/api/v1/events", type="egress.file")["events"] if e["path"].endswith("车间通知.txt")]
    assert event.get("match") is None and event.get("source_path") is None
    assert len(d.alerts(category="classified-egress")) == 2
