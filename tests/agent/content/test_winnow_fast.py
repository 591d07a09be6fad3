"""The whole-text winnowing (agent/content/winnow_fast.py) gives exactly the reference's values
(agent/content/winnow.py, pure Python): grams chosen, table blocks, line anchors and fingerprints,
on random texts built from the pieces that steer each step (CJK, full-width forms, tabs, bars and
double spaces, clause numbers, markings, boilerplate clauses, identifiers, odd line breaks) and on
the realistic corpora of the lineage tests. An index built by either is the same."""

from __future__ import annotations

import random
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import winnow, winnow_fast
from tests.agent.content import genre_corpus
from tests.agent.content.lineage_corpus import paragraph

PIECES = (
    "泵体", "叶轮转速", "商业秘密", "内部资料", "注意保密", "机密★", "★机密 5 年", "秘密★长期", "CONFIDENTIAL",
    "internal use only", "第3条 ", "1.2 ", "（一）", "Article 4. ", "section  7", "Straße", "ＡＢＣ１２３", "℃",
    "\t", "|", "  ", " ", "\u3000", "\t ", " \t", "、", "。", "，", "：", "-", "_", "x", "X", "the", "of", "and",
    "pump", "impeller", "tolerance", "110105194912310021", "6222021234567890123", "13812345678",
    "91330100MA27XY1234", "\u00e9", "e\u0301", "\U0001f600", "\U00020000", "ǅ", "ﬁ", "①", "²", "٣",
    "\u4dc0", "\uf900", "\n", "\r\n", "\u2028", "\x0b", "\x1c", "\x85", "\n\n", "1", "22", "333",
)  # fmt: skip
CLAUSES = tuple(winnow.boilerplate_entries()[::7])

texts = st.lists(
    st.one_of(
        st.sampled_from(PIECES),
        st.sampled_from(CLAUSES),
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
    ),
    max_size=80,
).map("".join)

SHAPES = ((24, 90), (8, 20), (3, 7), (5, 5), (1, 3))


@pytest.fixture(autouse=True, scope="module", params=["native", "numpy"])
def path(request):
    """Every test twice: with the C extension agent.content._winnow where it was built, and with the
    numpy passes that run where it was not (tests/agent/content/test_winnow_native.py has more)."""
    if request.param == "native" and winnow_fast._native is None:
        pytest.skip("agent.content._winnow not built")
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "numpy":
            patch.setattr(winnow_fast, "_native", None)
        yield request.param


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same(text: str, gram: int = winnow.GRAM_BYTES, window: int = winnow.WINDOW_BYTES) -> None:
    boilerplate = winnow.boilerplate_hashes(gram)
    assert winnow_fast.table_blocks(text) == winnow.table_blocks(text)
    assert winnow_fast.line_anchors(text, gram, boilerplate) == winnow.line_anchors(text, gram, boilerplate)
    assert winnow_fast.line_anchors(text, gram) == winnow.line_anchors(text, gram)
    assert winnow_fast.fingerprints(text, gram, window) == winnow.reference_fingerprints(text, gram, window)


@FAST
@given(texts)
def test_random_texts_give_the_reference_fingerprints(text):
    _same(text)


@FAST
@given(texts, st.sampled_from(SHAPES))
def test_other_gram_and_window_sizes_give_the_reference_fingerprints(text, shape):
    _same(text, *shape)


@FAST
@given(st.binary(max_size=400), st.sampled_from(SHAPES))
def test_any_bytes_choose_the_reference_grams(data, shape):
    """Ties, cut characters (a text starting inside one), runs shorter than a window."""
    assert winnow_fast.chosen(data, *shape) == winnow._chosen(data, *shape)


@pytest.mark.parametrize("lang", ["zh", "en", "mix"])
def test_long_texts_choose_the_reference_grams_across_chunks(lang, monkeypatch):
    monkeypatch.setattr(winnow_fast, "CHUNK_BYTES", 4096)  # many chunk edges
    rng = random.Random(lang)
    text = "\n".join(paragraph(rng, rng.choice(["zh", "en"]) if lang == "mix" else lang) for _ in range(300))
    data = winnow.normalise(text).encode()
    assert winnow_fast.chosen(data, winnow.GRAM_BYTES, winnow.WINDOW_BYTES) == winnow._chosen(
        data, winnow.GRAM_BYTES, winnow.WINDOW_BYTES
    )
    _same(text)


@pytest.mark.parametrize("layout", ["rows", "pdf-cells", "pdf-wrapped", "rewrapped"])
def test_the_genre_corpus_gives_the_reference_fingerprints(layout):
    """Quotations, contracts, specs, minutes and letters of four firms in Chinese and English:
    tables, numbered clauses, boilerplate, signature blocks, as each extraction lays them out."""
    rng = random.Random(layout)
    for firm in genre_corpus.FIRMS:
        for genre in genre_corpus.GENRES:
            for lang in ("zh", "en"):
                doc = genre_corpus.document(rng, firm, genre, lang)
                _same(genre_corpus.render(doc, layout, rng))


def test_a_marking_split_over_two_lines_is_judged_line_by_line():
    """内部资料\\s*注意保密 spans a line break in the joined text; each line is a marking line alone."""
    text = "某某精密机械有限公司的内部资料\n注意保密，本泵体叶轮转速参数不得向第三方披露，违者追究"
    assert winnow_fast.line_anchors(text) == winnow.line_anchors(text) == set()
    _same(text)


def test_marking_matches_across_lines_and_many_lines_are_counted_as_the_reference():
    """A match over a line break whose first line is no marking line alone (strictly\\nconfidential),
    one whose second is not (机密\\n★ 5 年 then prose), lines of several matches, CJK before a match
    (its line counted in UTF-8 bytes), and matches on the last line without a final break."""
    prose = "本泵体叶轮转速参数与公差表由研发部整理并每季度复核一次"
    lines = [
        "Our impeller rotor design note is strictly",
        "confidential and shared with two partners only this year",
        prose + "机密",
        "★ 5 年 " + prose,
        prose + " 商业秘密 " + prose + " CONFIDENTIAL",
        prose,
        "the pump casing drawings and tolerance tables of the new model",
        prose + "内部资料 注意保密",
    ]
    for text in ("\n".join(lines), "\n".join(reversed(lines)), "\n".join(lines * 3)):
        expected = winnow.line_anchors(text)
        assert winnow_fast.line_anchors(text) == expected
        _same(text)


def test_fingerprints_use_the_fast_path_when_numpy_is_there(monkeypatch):
    text = "\n".join(paragraph(random.Random(5), "zh") for _ in range(20))
    calls = []
    monkeypatch.setattr(winnow_fast, "fingerprints", lambda *a: calls.append(a) or frozenset())
    winnow.fingerprints(text)
    assert calls


@pytest.mark.parametrize("separator", ["\t", "|", "  ", " \t", "\t\t", "\t ", " | ", "\u3000\u3000", "\t\u3000"])
@pytest.mark.parametrize("width", [winnow.MEDIAN_CELL_CHARS, winnow.MAX_CELL_CHARS])
def test_cells_at_the_length_limits_are_cut_as_the_reference_cuts_them(separator, width):
    """A cell of exactly the limit is a cell; a white space kept in it ("\\t b" is " b") makes it
    one character longer, and the line prose or the table's median too long."""
    rng = random.Random(f"{separator}{width}")
    rows = [
        separator.join("".join(rng.choice("泵体叶轮abc123") for _ in range(width)) for _ in range(3)) for _ in range(4)
    ]
    for text in ("\n".join(rows), "\n".join(f"  {r} " for r in rows), "\n".join(rows) + "\n" + "x" * 41):
        _same(text)


def test_without_numpy_the_reference_runs(monkeypatch):
    import sys

    import agent.content

    text = "\n".join(paragraph(random.Random(6), "en") for _ in range(5))
    expected = winnow_fast.fingerprints(text)
    monkeypatch.setitem(sys.modules, "agent.content.winnow_fast", None)  # import fails as without numpy
    monkeypatch.delattr(agent.content, "winnow_fast")
    calls = []
    reference = winnow.reference_fingerprints
    monkeypatch.setattr(winnow, "reference_fingerprints", lambda *a: calls.append(a) or reference(*a))
    assert winnow.fingerprints(text) == expected
    assert calls


@FAST
@given(texts, st.sampled_from([1, 7, 40, 200]))
def test_chunks_of_lines_give_the_reference_fingerprints(text, chunk_chars):
    """Tables running over a chunk's end, anchors of every chunk, one normalised text for the grams."""
    saved = winnow_fast.CHUNK_CHARS
    winnow_fast.CHUNK_CHARS = chunk_chars
    try:
        _same(text)
        _same(text, 8, 20)
    finally:
        winnow_fast.CHUNK_CHARS = saved


newline_texts = st.lists(st.sampled_from(["\n", "\n\n", "a", "泵体", "  ", "第3条 x", "1234567"]), max_size=40).map(
    "".join
)


@FAST
@given(st.one_of(newline_texts, texts), st.sampled_from([1, 2, 3, 7, 40, 200]))
def test_chunks_by_slices_are_the_chunks_of_lines(text, chunk_chars):
    """A text whose only breaks are "\\n" is cut by slices where str.splitlines and the lines'
    lengths cut it: empty lines, a final break, a line longer than a chunk; any text as before."""
    saved = winnow_fast.CHUNK_CHARS
    winnow_fast.CHUNK_CHARS = chunk_chars
    try:
        assert winnow_fast._chunks(text) == winnow_fast._chunks_of_lines(text)
        if "\n" in text and not any(char in text for char in winnow_fast._OTHER_BREAKS):
            assert winnow_fast._chunks_of_newlines(text) == winnow_fast._chunks_of_lines(text)
    finally:
        winnow_fast.CHUNK_CHARS = saved


def test_every_break_of_splitlines_but_newline_sends_the_text_the_reference_way():
    breaks = [chr(c) for c in range(sys.maxunicode + 1) if len(f"a{chr(c)}b".splitlines()) == 2]
    assert breaks == sorted(["\n", *winnow_fast._OTHER_BREAKS])


@pytest.mark.parametrize("layout", ["rows", "pdf-cells"])
def test_a_table_over_many_chunks_is_one_block(layout, monkeypatch):
    monkeypatch.setattr(winnow_fast, "CHUNK_CHARS", 64)
    rng = random.Random(layout)
    doc = genre_corpus.document(rng, genre_corpus.FIRMS[0], "quotation", "zh")
    _same(genre_corpus.render(doc, layout, rng))


def test_memory_stays_bounded_whatever_the_length_of_the_text():
    """Each pass holds the arrays of one chunk of lines (and the grams' ranks of one chunk), not of
    the text: 1.5 M characters of Chinese took 117 MB before chunking."""
    import tracemalloc

    rng = random.Random(10)
    text = "\n".join(paragraph(rng, "zh") for _ in range(12_000))[:1_500_000]
    winnow_fast.fingerprints(text[:1000])  # tables and caches built outside the measure
    tracemalloc.start()
    try:
        winnow_fast.fingerprints(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 1024 * 1024, peak


@pytest.mark.parametrize("fast", ["native", "numpy"])
def test_more_lines_than_the_cap_keep_the_smallest_distinct_hashes(fast, monkeypatch):
    """Over MAX_ANCHORS distinct anchor lines, each twice (a duplicate must not take a place under
    the cap), over several chunks: the same MAX_ANCHORS hashes as the reference keeps."""
    if fast == "numpy":
        monkeypatch.setattr(winnow_fast, "_native", None)
    rng = random.Random(21)
    letters = "bcdfghjklmnpqrstvwxz"
    lines = [" ".join("".join(rng.choice(letters) for _ in range(6)) for _ in range(8)) for _ in range(5000)]
    text = "\n".join(rng.sample(lines * 2, len(lines) * 2))
    monkeypatch.setattr(winnow_fast, "CHUNK_CHARS", 1 << 16)
    expected = winnow.line_anchors(text)
    assert len(expected) == winnow.MAX_ANCHORS
    assert winnow_fast.line_anchors(text) == expected
