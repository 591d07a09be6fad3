"""Lineage that tells a firm's documents from its competitors' (issue 15, item 3), measured on
the same-genre corpus of genre_corpus.py through the real index and inspect_file: other firms'
quotations, contracts, specs, minutes and letters sharing payment terms, legal clauses and
template headings are not traced; third-party licence texts are not; copies keeping half or more
of a register document are. Also: the shipped boilerplate list, tables by cell content, and an
index.db of an older agent upgraded in place."""

from __future__ import annotations

import sqlite3

import pytest

from agent import index as index_module
from agent.config import ClassifiedFolder
from agent.content import winnow
from agent.index import FingerprintIndex
from tests.agent.content import genre_corpus as corpus


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = tmp_path_factory.mktemp("genres")
    built = corpus.build(root / "corpus")
    (root / "state").mkdir()
    return corpus.evaluate(built, root / "state")


def test_the_corpus_holds_every_genre_language_and_kind(measured):
    kinds = {x.query.kind for x in measured.looked}
    assert kinds == {"derived", "paste", "same-genre", "third-party"}
    assert {(x.query.genre, x.query.lang) for x in measured.of("same-genre")} == {
        (g, lang) for g in corpus.GENRES for lang in ("zh", "en")
    }
    assert len(measured.of("same-genre")) >= 300 and len(measured.of("third-party")) >= 50


def test_other_firms_documents_of_the_same_genre_are_not_traced(measured):
    assert corpus.point(measured).fp_same_genre <= 0.01


def test_third_party_licence_texts_are_never_traced(measured):
    assert corpus.point(measured).fp_third_party == 0


def test_copies_keeping_half_or_more_are_traced_to_their_source(measured):
    found = corpus.point(measured)
    assert found.recall_half >= 0.95, corpus.recall_by(measured, "derived", lambda q: q.kept)
    # a short passage (10-30% kept, one pasted paragraph) is sometimes traced to a sibling of
    # its source that shares the firm's idiom: 8 of 500 measured (seed 15)
    assert found.wrong_source <= 0.02 * len(measured.of("derived") + measured.of("paste"))


def test_every_layout_of_a_copy_keeping_half_is_traced(measured):
    """Tables re-laid cell by cell, column by column, wrapped, or prose re-wrapped."""
    half = [x for x in measured.of("derived") if x.query.kept >= 0.5]
    for layout in ("rows", "pdf-cells", "pdf-wrapped", "rewrapped"):
        some = [x for x in half if x.query.layout == layout]
        traced = sum(corpus.traced(x) == str(x.query.source) for x in some)
        assert traced >= 0.9 * len(some), (layout, traced, len(some))


def test_pastes_of_three_paragraphs_or_more_are_traced_when_they_are_a_tenth_of_their_source(measured):
    """A spec's three paragraphs are 6-12% of its weighted fingerprints (its idiom is shared with
    its siblings) but many rare ones: MIN_EVIDENCE_ALONE traces them (88% on the share alone)."""
    assert corpus.point(measured).recall_paste3 >= 0.95, corpus.recall_by(measured, "paste", lambda q: q.paragraphs)


def test_the_shipped_boilerplate_list_is_large_and_never_counts():
    entries = winnow.boilerplate_entries()
    assert len(entries) >= 100
    assert any("预付30%" in e for e in entries) and any("Force Majeure" in e for e in entries)
    clause = "不可抗力：由于地震、台风、水灾、火灾、战争、疫情以及其他不能预见并且对其发生和后果不能防止或避免的不可抗力事件，致使合同不能履行的，遭受不可抗力的一方应立即通知对方，并在十五日内提供有关部门出具的证明文件。"
    assert winnow.fingerprints(clause) == frozenset()
    text = "本批叶轮采用双相不锈钢，扬程实测为32.5m，较上一批次提高1.2%。" * 3
    own = winnow.fingerprints(text)
    assert own and len(winnow.fingerprints(text + clause) - own) <= 2  # grams across the seam only
    assert not (winnow.fingerprints(text + clause) & winnow.boilerplate_hashes())


def _table(order: str) -> str:
    rows = [("序号", "产品名称", "规格型号", "数量", "单价")] + [
        (str(i), f"叶轮组件{i}", f"IS{80 + i}-65-{160 + i}", str(3 * i + 1), f"{1200 + 37 * i:,}") for i in range(1, 13)
    ]
    if order == "rows":
        return "\n".join("\t".join(r) for r in rows)
    if order == "columns":  # a PDF drawn column by column: one cell a line
        return "\n".join(r[c] for c in range(5) for r in rows)
    return "\n".join(c for r in rows for c in r)  # cell by cell, row order, one a line


@pytest.mark.parametrize("order", ["columns", "cells"])
def test_a_table_is_traced_by_its_cells_whatever_order_they_are_extracted_in(order):
    rows = _table("rows")
    source = winnow.fingerprints(rows) - winnow.line_anchors(rows)  # grams: each row is also a line of its own
    other = winnow.fingerprints(_table(order))
    # the cells' sorted stream gives both the same fingerprints; the rows' running text gives the
    # source more of its own at W = 90 bytes (7 of 16 shared, far above the 12% a match asks)
    assert len(source & other) >= 0.4 * len(source), (len(source & other), len(source))
    cells = winnow.table_blocks(_table("rows"))
    assert cells == winnow.table_blocks(_table(order))


def test_prose_wrapped_into_short_lines_is_not_a_table():
    text = corpus.prose(__import__("random").Random(3), corpus.FIRMS[0], "zh", 12)
    wrapped = "\n".join(text[i : i + 30] for i in range(0, len(text), 30))
    assert winnow.table_blocks(wrapped) == []
    # the grams are the same; the wrapped lines are lines of their own (anchors)
    assert winnow.fingerprints(wrapped) - winnow.line_anchors(wrapped) == winnow.fingerprints(
        text
    ) - winnow.line_anchors(text)


def test_an_older_agents_index_loses_its_boilerplate_and_is_fingerprinted_again(tmp_path):
    folder = tmp_path / "classified"
    folder.mkdir()
    clause = corpus.SHARED_ZH[20]  # 不可抗力, in the shipped list word for word
    assert clause in winnow.boilerplate_entries()
    own = corpus.prose(__import__("random").Random(5), corpus.FIRMS[0], "zh", 20)
    (folder / "spec.txt").write_text(own + "\n" + clause * 2, encoding="utf-8")
    folders = (ClassifiedFolder(str(folder), "core", "Specs"),)
    index = FingerprintIndex(str(tmp_path / "index.db"), folders)
    index.refresh()
    index.close()
    # what an older agent stored: the boilerplate's fingerprints too, and no scheme
    conn = sqlite3.connect(tmp_path / "index.db")
    doc, count = conn.execute("SELECT id, fingerprints FROM documents").fetchone()
    planted = sorted(winnow.boilerplate_hashes())[:5]
    conn.executemany("INSERT INTO fingerprints (hash, doc) VALUES (?, ?)", [(h, doc) for h in planted])
    conn.execute("UPDATE documents SET fingerprints = ?, scheme = NULL", (count + 5,))
    conn.commit()
    conn.close()
    index = FingerprintIndex(str(tmp_path / "index.db"), folders)
    row = index.db.conn().execute("SELECT fingerprints, scheme FROM documents").fetchone()
    assert row == (count, 1)  # stripped on open
    index.refresh()
    assert index.db.conn().execute("SELECT fingerprints, scheme FROM documents").fetchone() == (
        count,
        index_module.LINEAGE_SCHEME,
    )
    held = {h for (h,) in index.db.conn().execute("SELECT hash FROM fingerprints")}
    assert not held & winnow.boilerplate_hashes()
    assert index.lookup_partial(winnow.fingerprints(own)) is not None
    index.close()


def test_text_several_of_the_firms_documents_share_is_weak_evidence_for_each(tmp_path):
    """A clause four of our contracts carry (not in the shipped list) weighs 1/4 in each: a
    competitor's contract carrying it is not traced, a copy of half of one of ours is."""
    rng = __import__("random").Random(7)
    folder = tmp_path / "classified"
    folder.mkdir()
    clause = corpus.prose(rng, corpus.FIRMS[1], "zh", 4)  # the firm's own standard clause, 30% of each
    ours = [corpus.prose(rng, corpus.FIRMS[0], "zh", 12) for _ in range(4)]
    for i, own in enumerate(ours):
        (folder / f"contract{i}.txt").write_text(own + "\n" + clause, encoding="utf-8")
    index = FingerprintIndex(str(tmp_path / "index.db"), (ClassifiedFolder(str(folder), "core", "Contracts"),))
    index.refresh()
    theirs = winnow.fingerprints(corpus.prose(rng, corpus.FIRMS[2], "zh", 12) + "\n" + clause)
    shared = max(index.partial_candidates(theirs), key=lambda c: c.matched)
    assert shared.matched >= 3 and shared.similarity >= 0.2  # what the unweighted rule traced
    assert index.lookup_partial(theirs) is None
    half = ours[2][: len(ours[2]) // 2] + "\n" + clause
    found = index.lookup_partial(winnow.fingerprints(half))
    assert found is not None and found[0].path.endswith("contract2.txt")
    index.close()


def test_an_index_of_the_wider_window_keeps_tracing_and_is_fingerprinted_again(tmp_path):
    """Scheme 2 stored W = 180 fingerprints: every gram they chose is chosen at W = 90, so a copy
    is traced before the refresh, which then stores the denser fingerprints."""
    folder = tmp_path / "classified"
    folder.mkdir()
    own = corpus.prose(__import__("random").Random(9), corpus.FIRMS[0], "zh", 30)
    (folder / "spec.txt").write_text(own, encoding="utf-8")
    folders = (ClassifiedFolder(str(folder), "core", "Specs"),)
    index = FingerprintIndex(str(tmp_path / "index.db"), folders)
    index.refresh()
    index.close()
    wide = winnow.fingerprints(own, window_bytes=180)
    assert wide < winnow.fingerprints(own) and len(wide) < 0.7 * len(winnow.fingerprints(own))
    conn = sqlite3.connect(tmp_path / "index.db")
    conn.execute("DELETE FROM fingerprints")
    conn.executemany("INSERT INTO fingerprints (hash, doc) SELECT ?, id FROM documents", [(h,) for h in wide])
    conn.execute("UPDATE documents SET fingerprints = ?, scheme = 2", (len(wide),))
    conn.commit()
    conn.close()
    index = FingerprintIndex(str(tmp_path / "index.db"), folders)
    copy = winnow.fingerprints(own[: len(own) // 2])
    assert index.lookup_partial(copy) is not None
    index.refresh()
    assert index.db.conn().execute("SELECT fingerprints, scheme FROM documents").fetchone() == (
        len(winnow.fingerprints(own)),
        index_module.LINEAGE_SCHEME,
    )
    index.close()
