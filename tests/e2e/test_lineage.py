"""Partial-copy lineage end to end: edited, reordered copies of classified documents saved in
another format under another name on the stick are traced to their source (match.method
partial) and raise classified-egress; a document of the same firm that copies nothing does not."""

from __future__ import annotations

import random

import pytest

from tests.agent.content import lineage_corpus as corpus
from tests.e2e.conftest import copy
from tests.e2e.harness import wait_for
from tests.e2e.incidents import files_of

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

    # one user's copies to one stick in one session: one incident holding them (issue 19); the
    # unrelated document may be a file of it too (its marking), never a classified one
    def classified_files() -> set[str]:
        return {f["path"] for a in d.alerts(category="classified-egress") for f in files_of(d, a) if _classified(f)}

    wait_for(lambda: len(classified_files()) >= 2, 20, what="an incident of two classified files")
    [incident] = alerts = d.alerts(category="classified-egress")
    assert classified_files() == {str(p) for p in names.values()}
    events = {e["path"]: e for e in d.get(f"/api/v1/alerts/{incident['id']}")["events"] if e["path"] in classified_files()}
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
    assert classified_files() == {str(p) for p in names.values()}


def _classified(file: dict) -> bool:
    return any(x["category"] == "classified-egress" for x in file["facets"])
