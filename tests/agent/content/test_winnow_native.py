"""The C extension agent.content._winnow (setup.py, optional) gives exactly what winnow_fast's numpy
passes and the pure-Python reference (winnow.py) give: the grams chosen, their blake2b hashes,
NFKC, line anchors and fingerprints, on random texts and bytes, at the edges of one window, on long
texts and on the bench's documents of every kind. It runs in the inspection workers on text an
employee controls: bad arguments raise, never crash the process."""

from __future__ import annotations

import array
import hashlib
import os
import random
import shutil
import struct
import subprocess
import sys
import sysconfig
import unicodedata
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import winnow, winnow_fast
from tests.agent.content.lineage_corpus import paragraph
from tests.agent.content.test_winnow_fast import CLAUSES, PIECES, SHAPES, texts

WORDS = tuple(sorted(winnow_fast._vocabulary()[1]))[::5] + (" ", "\n", "泵体", "合同")

_native = winnow_fast._native


def _compiler() -> bool:
    headers = os.path.join(sysconfig.get_paths()["include"], "Python.h")
    return bool(shutil.which(sysconfig.get_config_var("CC").split()[0] or "cc")) and os.path.exists(headers)


def test_the_extension_is_built_where_a_compiler_is():
    """optional=True lets an install without a compiler go on; with one, a failed build is a bug."""
    if not _compiler():
        pytest.skip("no C compiler or Python headers: the numpy path runs")
    assert _native is not None, "agent.content._winnow was not built (pip install -e . with a compiler builds it)"


def test_the_built_extension_is_not_older_than_its_source():
    """In a source tree (pip install -e .), a compile that fails leaves the previous module in place
    (optional=True) and these tests would test it: the module must be newer than _winnow.c."""
    source = Path(winnow_fast.__file__).with_name("_winnow.c")
    if _native is None or Path(_native.__file__).parent != source.parent or not source.exists():
        pytest.skip("no extension built next to its source")
    assert Path(_native.__file__).stat().st_mtime >= source.stat().st_mtime, (
        "agent/content/_winnow.c changed since the module was built: run pip install -e . and read its output"
    )


pytestmark_native = pytest.mark.skipif(_native is None, reason="agent.content._winnow not built: numpy path only")
SOME = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _numpy(monkeypatch) -> None:
    monkeypatch.setattr(winnow_fast, "_native", None)


def _native_chosen(data: bytes, gram: int, window: int) -> list[int]:
    raw = _native.chosen(data, gram, window)
    return list(struct.unpack(f"={len(raw) // 8}q", raw))


def _three_ways(text: str, gram: int = winnow.GRAM_BYTES, window: int = winnow.WINDOW_BYTES) -> frozenset[int]:
    """fingerprints and line anchors by the native path, the numpy path and the reference: the same."""
    boilerplate = winnow.boilerplate_hashes(gram)
    native = winnow_fast.fingerprints(text, gram, window)
    native_anchors = winnow_fast.line_anchors(text, gram, boilerplate)
    assert winnow_fast.table_blocks(text) == winnow.table_blocks(text)
    with pytest.MonkeyPatch.context() as patch:
        _numpy(patch)
        assert winnow_fast.fingerprints(text, gram, window) == native
        assert winnow_fast.line_anchors(text, gram, boilerplate) == native_anchors
    assert winnow.reference_fingerprints(text, gram, window) == native
    assert winnow.line_anchors(text, gram, boilerplate) == native_anchors
    return native


@pytestmark_native
@SOME
@given(st.binary(max_size=600), st.sampled_from(SHAPES))
def test_any_bytes_choose_the_grams_of_numpy_and_the_reference(data, shape):
    """Ties, cut characters (a text starting or ending inside one), runs shorter than a window."""
    chosen = _native_chosen(data, *shape)
    assert chosen == sorted(set(chosen))  # ascending, distinct
    assert set(chosen) == set(winnow_fast._numpy_chosen(data, *shape).tolist()) == winnow._chosen(data, *shape)


@pytestmark_native
@SOME
@given(
    st.lists(st.sampled_from([b"a", b"b", b"\xe6\xb3\xb5", b"\xc3\xa9", b"\x00", b"\x80"]), max_size=300).map(b"".join)
)
def test_few_distinct_grams_tie_as_the_reference_breaks_ties(data):
    """Repeated grams have equal CRCs: the rightmost smallest is chosen, as winnow._chosen does."""
    for shape in ((3, 7), (1, 3), (24, 90), (5, 5)):
        assert set(_native_chosen(data, *shape)) == winnow._chosen(data, *shape)


@pytestmark_native
@pytest.mark.parametrize("gram,window", [(24, 90), (8, 20), (1, 1), (3, 7)])
def test_texts_at_the_edges_of_one_window(gram, window):
    """No complete window, exactly one, one more: the leftmost smallest gram, then the windows'."""
    rng = random.Random(gram * 1000 + window)
    for size in range(0, gram + window + 8):
        for alphabet in ("ab", "泵体叶轮", "a泵é"):
            data = "".join(rng.choice(alphabet) for _ in range(size)).encode()[:size]
            assert set(_native_chosen(data, gram, window)) == winnow._chosen(data, gram, window), (size, alphabet)


@pytestmark_native
@SOME
@given(st.binary(max_size=300), st.binary(max_size=200), st.lists(st.integers(0, 300), max_size=40))
def test_hashes_are_hashlibs_blake2b(data, prefix, cuts):
    """Spans of every length (blocks of 128 bytes and their edges), with and without a prefix."""
    cuts = [min(c, len(data)) for c in cuts]
    begins = array.array("q", [min(a, b) for a, b in zip(cuts, reversed(cuts), strict=True)])
    ends = array.array("q", [max(a, b) for a, b in zip(cuts, reversed(cuts), strict=True)])
    digests = _native.hashes(data, begins, ends, prefix)
    expected = b"".join(
        hashlib.blake2b(prefix + data[b:e], digest_size=8).digest() for b, e in zip(begins, ends, strict=True)
    )  # fmt: skip
    assert digests == expected


@pytestmark_native
@SOME
@given(st.binary(max_size=300), st.integers(1, 40), st.lists(st.integers(0, 300), max_size=30))
def test_crcs_are_zlibs(data, gram, offsets):
    offsets = [o for o in offsets if o + gram <= len(data)]
    got = _native.crcs(data, array.array("q", offsets), gram)
    assert list(struct.unpack(f"={len(offsets)}I", got)) == [zlib.crc32(data[o : o + gram]) for o in offsets]
    for bad in ([len(data) - gram + 1], [-1]):
        with pytest.raises(IndexError):
            _native.crcs(data, array.array("q", bad), gram)


@pytestmark_native
@SOME
@given(
    st.binary(max_size=300), st.integers(1, 40), st.lists(st.integers(0, 300), max_size=30),
    st.lists(st.integers(0, 2**32 - 1), max_size=50),
)  # fmt: skip
def test_crcs_in_keys_are_zlibs_crcs_looked_up(data, gram, offsets, others):
    """The boilerplate probes' prefilter: a CRC among the keys (every other probe's own, other
    numbers, a negative one) is found, any other is not; slicing by 8 gives zlib's CRC at any length."""
    offsets = [o for o in offsets if o + gram <= len(data)]
    crcs = [zlib.crc32(data[o : o + gram]) for o in offsets]
    keys = sorted(set(crcs[::2]) | set(others) | {-5})
    got = _native.crcs_in(data, array.array("q", offsets), gram, array.array("q", keys))
    assert list(got) == [int(c in keys) for c in crcs]
    for bad in ([len(data) - gram + 1], [-1]):
        with pytest.raises(IndexError):
            _native.crcs_in(data, array.array("q", bad), gram, array.array("q", keys))
    with pytest.raises(ValueError):
        _native.crcs_in(data, array.array("q", offsets), gram, b"abc")


@pytestmark_native
@pytest.mark.parametrize("prefix", [b"", winnow.ANCHOR_SALT, b"r" * 127])
def test_many_spans_of_mixed_lengths_hash_as_hashlib_in_one_call(prefix):
    """Spans of one to five blocks (the four-lane batches of one to four blocks fill and flush in
    any order; a longer message goes alone), every length at a block's edge, in random order."""
    rng = random.Random(len(prefix))
    data = rng.randbytes(3000)
    lengths = [n for edge in range(0, 641, 128) for n in (edge - 1, edge, edge + 1) if n >= 0] * 5
    lengths += [rng.randrange(700) for _ in range(300)]
    rng.shuffle(lengths)
    begins = [rng.randrange(len(data) - n + 1) for n in lengths]
    got = _native.hashes(
        data, array.array("q", begins), array.array("q", [b + n for b, n in zip(begins, lengths, strict=True)]), prefix
    )
    expected = b"".join(
        hashlib.blake2b(prefix + data[b : b + n], digest_size=8).digest() for b, n in zip(begins, lengths, strict=True)
    )  # fmt: skip
    assert got == expected


@pytestmark_native
def test_hashes_of_long_spans_and_prefixes():
    data = random.Random(3).randbytes(5000)
    for length in (0, 1, 127, 128, 129, 255, 256, 257, 1000, 5000):
        for prefix in (b"", winnow.ANCHOR_SALT, b"p" * 128, b"q" * 300):
            got = _native.hashes(data, array.array("q", [0]), array.array("q", [length]), prefix)
            assert got == hashlib.blake2b(prefix + data[:length], digest_size=8).digest()


nfkc_texts = st.lists(
    st.one_of(
        st.sampled_from(PIECES),
        st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=20),
        st.sampled_from(["\u1100\u1161", "가\u11a8", "\u0b47\u0b3e", "e\u0301", "\u0301", "ﾊﾟ", "ｶﾞ", "㍿", "ﷺ", "①"]),
    ),
    max_size=60,
).map("".join)


@pytestmark_native
@SOME
@given(nfkc_texts)
def test_nfkc_by_table_is_unicodedatas(text):
    """The table's answer is unicodedata's, or none (a character that may compose: the caller runs
    unicodedata): Hangul jamo, combining marks, starters that compose (Oriya, Tamil vowel signs),
    half-width kana with their sound marks."""
    got = _native.nfkc(text, *winnow_fast._nfkc_table())
    assert got is None or got == unicodedata.normalize("NFKC", text)
    assert winnow_fast._nfkc(text) == unicodedata.normalize("NFKC", text)


@pytestmark_native
def test_the_table_covers_chinese_and_english_text():
    """The table path is the one taken for everyday text (full-width punctuation included)."""
    rng = random.Random(8)
    for lang in ("zh", "en"):
        text = "\n".join(paragraph(rng, lang) for _ in range(50)) + "，。：；（）！？ＡＢＣ１２３　"
        assert _native.nfkc(text, *winnow_fast._nfkc_table()) == unicodedata.normalize("NFKC", text)


@pytestmark_native
def test_every_table_character_is_normalised_as_unicodedata_does():
    """All BMP characters the table holds, alone and in pairs with their neighbours."""
    entries = array.array("i", winnow_fast._nfkc_table()[0])
    held = "".join(chr(c) for c in range(0x10000) if entries[c] != -1)
    assert len(held) > 50_000
    assert _native.nfkc(held, *winnow_fast._nfkc_table()) == unicodedata.normalize("NFKC", held)
    shuffled = list(held)
    random.Random(1).shuffle(shuffled)
    text = "".join(shuffled)
    assert _native.nfkc(text, *winnow_fast._nfkc_table()) == unicodedata.normalize("NFKC", text)


@pytestmark_native
@SOME
@given(nfkc_texts)
def test_casefold_by_table_is_strs(text):
    """The code points of text.casefold() and which are letters or digits, or none (a character
    beyond the BMP: the numpy way)."""
    got = _native.fold(text, *winnow_fast._casefold_table())
    folded = winnow_fast._codepoints(text.casefold())
    if got is not None:
        assert np.frombuffer(got[0], dtype=np.uint32).tolist() == folded.tolist()
        assert np.frombuffer(got[1], dtype=bool).tolist() == winnow_fast._is_word(folded).tolist()
    codes, word = winnow_fast._casefolded(text)
    assert codes.tolist() == folded.tolist() and word.tolist() == winnow_fast._is_word(folded).tolist()


@pytestmark_native
def test_every_bmp_character_is_casefolded_as_str_does():
    text = "".join(chr(c) for c in range(0x10000) if not 0xD800 <= c < 0xE000)
    folded, word = _native.fold(text, *winnow_fast._casefold_table())
    expected = winnow_fast._codepoints(text.casefold())
    assert np.frombuffer(folded, dtype=np.uint32).tolist() == expected.tolist()
    assert np.frombuffer(word, dtype=bool).tolist() == winnow_fast._is_word(expected).tolist()
    assert _native.fold("\U00010400", *winnow_fast._casefold_table()) is None  # Deseret: the numpy way
    assert _native.fold("泵\ud800", *winnow_fast._casefold_table()) is None


table_texts = st.lists(
    st.one_of(
        st.sampled_from(
            ["\t", "|", "  ", " ", "\t ", " \t", "\t\t ", "\u3000", "\xa0", "\n", "\r\n", "\x0b", "\x1c", "\u2028"]
        ),
        st.sampled_from(["泵体", "叶轮", "x" * 17, "y" * 41, "型号", "12", "Straße", "\U0001f600", "ＡＢ"]),
        st.text(max_size=6),
    ),
    max_size=120,
).map("".join)


@pytestmark_native
@SOME
@given(table_texts)
def test_table_cells_are_the_numpy_paths(text):
    """Cells cut at tabs, bars and runs of white space (a tab then one space kept in the cell),
    long cells ending a run, as numpy cuts them; and the blocks the reference finds."""
    joined = "\n".join(text.splitlines())
    native = winnow_fast._table_runs(joined)
    with pytest.MonkeyPatch.context() as patch:
        _numpy(patch)
        assert winnow_fast._table_runs(joined) == native
    assert winnow_fast.table_blocks(text) == winnow.table_blocks(text)


def test_no_character_beyond_the_bmp_is_white_space():
    """_winnow.cells reads white space from a BMP table and takes the rest for non-space."""
    assert not [c for c in range(0x10000, sys.maxunicode + 1) if chr(c).isspace()]


generic_texts = st.lists(
    st.one_of(st.sampled_from(PIECES), st.sampled_from(CLAUSES), st.sampled_from(WORDS), st.text(max_size=8)),
    max_size=80,
).map("".join)


@pytestmark_native
@SOME
@given(generic_texts)
def test_generic_lines_are_the_numpy_paths(text):
    """The share of each line's tokens in the boilerplate's vocabulary (CJK pairs, lone CJK
    characters, words, function words that do not count), line by line, as numpy counts it."""
    folded = winnow_fast._fold(text)
    word = winnow_fast._is_word(folded)
    line_of = np.cumsum(folded == 10, dtype=np.int32)
    lines = int(line_of[-1]) + 1 if len(line_of) else 1
    native = winnow_fast._generic(folded, word, line_of, lines)
    with pytest.MonkeyPatch.context() as patch:
        _numpy(patch)
        assert native.tolist() == winnow_fast._generic(folded, word, line_of, lines).tolist()
    for line, is_generic in zip(_fold_lines(text), native.tolist(), strict=True):
        assert is_generic == (winnow.generic_share(line) >= winnow.MAX_GENERIC_SHARE)


@pytestmark_native
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_generic_lines_with_many_keys_are_the_numpy_paths(seed):
    """Some 20,000 CJK keys (colliding in the native set), lines of the characters they are made of;
    the last two lines are one of keys only (generic whatever the draw) and one of a character no
    key holds (never generic), so both answers are always exercised."""
    rng = random.Random(seed)
    chars = [chr(c) for c in rng.sample(range(0x4E00, 0x4E00 + 300), 150)]
    pairs = {ord(a) << 21 | ord(b) for a in chars for b in chars if rng.random() < 0.9}
    keys = np.array(sorted(pairs | set(winnow_fast._vocabulary()[0].tolist())), dtype=np.int64)
    words = winnow_fast._vocabulary()[1]
    doubled = next(c for c in chars if ord(c) << 21 | ord(c) in pairs)
    text = "\n".join("".join(rng.choices([*chars, "x", " ", "泵"], k=rng.randint(0, 30))) for _ in range(200))
    text += "\n" + doubled * 20 + "\n" + "泵" * 20
    folded = winnow_fast._fold(text)
    word = winnow_fast._is_word(folded)
    lines = text.count("\n") + 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(winnow_fast, "_vocabulary", lambda: (keys, words))
        native = winnow_fast._generic(folded, word, None, lines).tolist()
        _numpy(patch)
        assert native == winnow_fast._generic(folded, word, None, lines).tolist()
    assert native[-2:] == [True, False]


def _fold_lines(text: str) -> list[str]:
    """The lines as the fold sees them: NFKC, then split at "\n" only (the fold keeps other breaks)."""
    return unicodedata.normalize("NFKC", text).split("\n")


@pytestmark_native
def test_generic_rejects_inconsistent_buffers():
    keys = winnow_fast._vocabulary()[0]
    table = winnow_fast._word_table()
    folded = np.array([ord(c) for c in "ab\ncd\nef"], dtype=np.uint32)
    word = np.ones(len(folded), dtype=bool)
    with pytest.raises(ValueError):
        _native.generic(folded, word, keys, 2, *table)  # three lines
    with pytest.raises(ValueError):
        _native.generic(folded, word[:-1], keys, 3, *table)
    with pytest.raises(ValueError):
        _native.generic(folded, word, keys, 3, b"\xff\xff\xff\x7f" * 16, *table[1:])  # a slot past the words
    assert len(_native.generic(folded, word, keys, 3, *table)) == 3


def _numpy_layout(folded: np.ndarray, word: np.ndarray, gram: int) -> tuple[list, ...]:
    """What _winnow.lines gives, from numpy: the kept text's UTF-8, each line's start and size, and
    for each line of a gram or more its count of grams at character starts and the first, middle
    and last of them (winnow._starts of the line's text, offset by its start)."""
    data = winnow_fast._utf8(folded[word | (folded == 10)])
    starts, sizes, counts, probes, at = [], [], [], [], 0
    for line in data.split(b"\n"):
        grams = [at + o for o in winnow._starts(line, gram)]
        starts.append(at)
        sizes.append(len(line))
        counts.append(len(grams))
        probes.append((grams[0], grams[len(grams) // 2], grams[-1]) if grams else (0, 0, 0))
        at += len(line) + 1
    return data, starts, sizes, counts, probes


@pytestmark_native
@SOME
@given(generic_texts, st.sampled_from([1, 2, 3, 5, 24]))
def test_line_layout_is_the_numpy_paths(text, gram):
    """Each line's normalised UTF-8, start, size, grams and probes (first, middle, last gram at a
    character start), as numpy and winnow._starts find them; a line of fewer bytes than a gram has
    none."""
    folded = winnow_fast._fold(text)
    word = winnow_fast._is_word(folded)
    data, *layout = _native.lines(folded, word.view(np.uint8), gram)
    starts, sizes, counts, probes = (np.frombuffer(raw, dtype=np.int64).tolist() for raw in layout)
    expected = _numpy_layout(folded, word, gram)
    assert (data, starts, sizes, counts) == expected[:4]
    assert [tuple(probes[3 * i : 3 * i + 3]) for i in range(len(starts))] == expected[4]


@pytestmark_native
def test_line_layout_rejects_bad_buffers_and_code_points():
    folded = np.array([ord(c) for c in "ab\ncd"], dtype=np.uint32)
    word = np.ones(len(folded), dtype=np.uint8)
    with pytest.raises(ValueError):
        _native.lines(folded, word[:-1], 3)
    with pytest.raises(ValueError):
        _native.lines(folded, word, 0)
    with pytest.raises(ValueError):
        _native.lines(folded.tobytes()[:-1], word, 3)
    for bad in (0xD800, 0xDFFF, 0x110000, 0xFFFFFFFF):
        with pytest.raises(ValueError):
            _native.lines(np.array([97, bad], dtype=np.uint32), np.ones(2, dtype=np.uint8), 1)
    assert _native.lines(b"", b"", 3)[:3] == (b"", bytes(8), bytes(8))
    data, _, _, counts, _ = _native.lines(folded, word, 10**15)
    assert data == b"ab\ncd" and counts == bytes(16)


@pytestmark_native
@SOME
@given(texts)
def test_random_texts_give_the_same_fingerprints_three_ways(text):
    _three_ways(text)


@pytestmark_native
@SOME
@given(texts, st.sampled_from(SHAPES))
def test_other_gram_and_window_sizes_give_the_same_fingerprints_three_ways(text, shape):
    _three_ways(text, *shape)


@pytestmark_native
@pytest.mark.parametrize(
    "text", ["", "a", "泵", "\n\n", "\x00" * 500, "泵体" * 3, "x" * (winnow.GRAM_BYTES + winnow.WINDOW_BYTES)]
)
def test_short_and_empty_texts(text):
    _three_ways(text)


@pytestmark_native
@pytest.mark.parametrize("lang", ["zh", "en", "mix"])
def test_long_texts_give_the_same_fingerprints_three_ways(lang):
    rng = random.Random(lang)
    text = "\n".join(paragraph(rng, rng.choice(["zh", "en"]) if lang == "mix" else lang) for _ in range(300))
    assert len(_three_ways(text)) > 100


@pytestmark_native
@pytest.mark.parametrize("kind", ["text", "csv", "docx", "xlsx", "pptx", "pdf"])
def test_the_bench_documents_give_the_same_fingerprints_three_ways(kind, tmp_path):
    """The documents `python -m bench content` inspects, as extraction gives their text."""
    from agent.content.extract import extract
    from agent.content.inspect import TEXT_PLACES
    from bench import corpus

    (path,) = corpus.documents(str(tmp_path), kind, 1, 48 * 1024)
    text = extract(path, os.path.basename(path)).text_of(*TEXT_PLACES)
    assert len(text) > 10_000
    assert _three_ways(text)


# --- hostile input ----------------------------------------------------------------------------


@pytestmark_native
def test_bad_arguments_raise_and_do_not_crash():
    data = b"abcdefgh" * 10
    with pytest.raises(ValueError):
        _native.chosen(data, 0, 5)
    with pytest.raises(ValueError):
        _native.chosen(data, 3, -1)
    with pytest.raises(TypeError):
        _native.chosen("text", 3, 5)
    assert _native.chosen(data, 10**15, 5) == b""  # a gram longer than the data: none
    assert len(_native.chosen(data, 3, 10**15)) == 8  # no complete window: one gram
    q = array.array("q")
    for begins, ends in (([0], [81]), ([-1], [3]), ([5], [4]), ([2**62], [2**62 + 1]), ([0, 0], [1])):
        with pytest.raises((IndexError, ValueError)):
            _native.hashes(data, array.array("q", begins), array.array("q", ends), b"")
    with pytest.raises(ValueError):
        _native.hashes(data, b"\x00" * 7, b"\x00" * 7, b"")  # not int64
    assert _native.hashes(data, q, q, b"") == b""
    entries, pool = winnow_fast._nfkc_table()
    with pytest.raises(ValueError):
        _native.nfkc("abc", entries[:-4], pool)
    with pytest.raises(ValueError):
        _native.fold("abc", entries, pool, b"\x01" * 100)
    with pytest.raises(ValueError):
        _native.cells("a b", b"\x01" * 100)
    assert _native.cells("", winnow_fast._space_table()) == (b"", b"", b"", 1)
    broken = bytearray(entries)
    broken[4 * ord("Ａ") : 4 * ord("Ａ") + 4] = struct.pack("<i", (len(pool) // 4) << 8 | 5)  # past the pool
    with pytest.raises(ValueError):
        _native.nfkc("Ａ", bytes(broken), pool)


@pytestmark_native
def test_lone_surrogates_nuls_and_astral_text_go_the_reference_way():
    """A lone surrogate is not in the table (unicodedata then answers); NULs and text beyond the
    BMP are winnowed as the reference winnows them."""
    table = winnow_fast._nfkc_table()
    assert _native.nfkc("泵体\ud800叶轮", *table) is None
    assert _native.nfkc("泵体\U00020000", *table) is None
    assert winnow_fast._nfkc("泵体\ud800叶轮") == unicodedata.normalize("NFKC", "泵体\ud800叶轮")
    _three_ways("叶轮转速\x00" * 200 + "\U00020000\U0001f600" * 50)
    with pytest.raises(UnicodeEncodeError):  # as the numpy path and the reference: extraction never gives these
        winnow_fast.fingerprints("泵体叶轮\ud800" * 100)


@pytestmark_native
def test_huge_inputs_are_bounded():
    """20 MB of bytes with few character starts, and the longest text fingerprinted."""
    data = (b"\x80" * 999 + b"a") * 20_000
    assert len(_native_chosen(data, 24, 90)) == len(winnow_fast._numpy_chosen(data, 24, 90))
    rng = random.Random(9)
    text = "".join(rng.choice("泵体叶轮转速公差abcdef \n") for _ in range(winnow.MAX_TEXT_CHARS + 1000))
    with pytest.MonkeyPatch.context() as patch:
        found = winnow_fast.fingerprints(text)
        _numpy(patch)
        assert winnow_fast.fingerprints(text) == found


def test_without_the_extension_the_numpy_path_runs():
    """Where it was not built (no compiler), importing winnow_fast still works and says so."""
    code = (
        "import sys; sys.modules['agent.content._winnow'] = None\n"
        "from loguru import logger; logger.remove(); logger.add(sys.stdout, level='DEBUG', format='{message}')\n"
        "from agent.content import winnow, winnow_fast\n"
        "assert winnow_fast._native is None\n"
        "print(len(winnow.fingerprints('泵体叶轮转速公差' * 100)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=winnow.BOILERPLATE_DIR.parents[2]
    )
    assert done.returncode == 0, done.stderr
    assert "winnowing path=numpy" in done.stdout
    assert int(done.stdout.split()[-1]) > 0


def test_crc_is_zlibs():
    """The rolling CRC-32 of the C code ranks grams as zlib.crc32 does: with no complete window the
    leftmost gram of smallest zlib CRC is chosen."""
    if _native is None:
        pytest.skip("agent.content._winnow not built")
    rng = random.Random(2)
    for _ in range(300):
        data = bytes(b & 0x7F for b in rng.randbytes(40))  # ASCII: every byte starts a gram
        crcs = [zlib.crc32(data[o : o + 24]) for o in range(len(data) - 23)]
        assert _native_chosen(data, 24, 1000) == [crcs.index(min(crcs))]


@pytestmark_native
@pytest.mark.parametrize(
    "gram,window",
    [(24, 90), (3, 7), (1, 1), (5, 4096), (8, 4097), (24, 5000)],  # blocks up to 4096 bytes, then the queue
)
@pytest.mark.parametrize("alphabet", ["ab", "泵体叶轮转速", "a泵é\x80", "abcdefghijklmnopqrstuvwxyz泵体叶轮"])
def test_long_data_across_chunks_chooses_the_references_grams(gram, window, alphabet):
    """Data of several of the block pass's chunks (65,536 window starts each), its four CRC chains
    and their overlap, ties across a chunk's end (a two-letter alphabet), and windows either side
    of the longest the block pass takes: the reference's grams."""
    rng = random.Random(zlib.crc32(f"{gram} {window} {alphabet}".encode()))
    for size in (140_001, 65_536 + window + gram - 1, 65_536 + window + gram):
        data = "".join(rng.choice(alphabet) for _ in range(size)).encode()[: size + rng.randrange(3)]
        chosen = _native_chosen(data, gram, window)
        assert chosen == sorted(set(chosen))
        assert set(chosen) == winnow._chosen(data, gram, window), size
