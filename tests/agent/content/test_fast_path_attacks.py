"""Hostile input against the inspection fast paths of issue 21 round 3 (the C winnowing module,
the marking terms' UTF-8 pass and the C prefilter before it, the identifier table path, xlsx simple
rows and plain docx paragraphs, add_all's surrogate check): each must give what its reference
gives on input an employee crafts (a file on a USB stick, in an IM folder), in time that grows
linearly, without crashing the inspection worker. An attacker's aim here is a marking or a
resident ID the reference finds and the fast path misses, or a file that stalls the worker."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import budget, document, identifiers, marking_terms, ooxml, winnow, winnow_fast
from agent.content.document import BODY, Cell, Document, TextPart
from agent.content.inspect import inspect_file
from tests.agent.content.test_identifier_vector import TODAY, _both, _card, _resident

# line breaks str.splitlines knows besides "\n", BOMs, NUL, astral and folding characters
BREAKS = ("\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
ODD = ("\ufeff", "\x00", "\t", "|", "  ", "𠀀", "𝐀", "😀", "ﬁ", "ﷺ", "ß", "İ", "ǅ", "\u0345", "Ａ", "１", "ſ", "K")
MARKINGS = ("商业秘密", "内部资料 注意保密", "CONFIDENTIAL", "Do not distribute", "trade secret", "机密★5年")


# crafted members are read at this size, where what grows with the square of the input (the
# backtracking these tests were written against: 0.3 s at 8,000 characters) would run for hours and
# fail by the test's timeout, while one pass takes well under a second: no clock is read here
AT_SCALE = 1_000_000
SCALE_TIMEOUT_S = 120


def _line(unit: str, utf8_bytes: int) -> str:
    """A line whose normalised UTF-8 is utf8_bytes long (with ANCHOR_SALT: 7 bytes more)."""
    size = len(winnow.normalise(unit).encode())
    return unit * (utf8_bytes // size) + "a" * (utf8_bytes % size)


EDGE_BYTES = (1, 23, 24, 25, 89, 90, 91, 120, 121, 127, 128, 129, 135, 136, 392, 393, 400, 401, 512, 513, 4096, 4097)


@pytest.mark.skipif(winnow_fast._native is None, reason="the C extension agent.content._winnow is not built")
@pytest.mark.reliability(
    area="input",
    fault="Text crafted for the C winnowing module's edges",
    how="lines of exactly 1-4,097 normalised UTF-8 bytes (blake2b blocks with the salt, 4 KB windows) of ASCII, "
    "CJK and astral letters, NUL, BOMs and every line break str.splitlines knows",
    outcome="the C path gives the reference's fingerprints, no crash (clean under ASAN/UBSAN too)",
)
@pytest.mark.parametrize("unit", ["a", "中", "𠀀", "ﬁ"])
def test_winnow_lines_at_block_and_window_edges_give_the_reference(unit):
    for size in EDGE_BYTES:
        line = _line(unit, size)
        for text in (line, f"x\n{line}\nword word word word word word", "\r\n".join([line, "其他", line])):
            assert winnow_fast.fingerprints(text) == winnow.reference_fingerprints(text), (unit, size)
    text = "\n".join(_line(unit, size) for size in EDGE_BYTES)
    for window in (1, 4095, 4096, 4097):
        assert winnow_fast.fingerprints(text, 24, window) == winnow.reference_fingerprints(text, 24, window)


@pytest.mark.skipif(winnow_fast._native is None, reason="the C extension agent.content._winnow is not built")
@pytest.mark.reliability(
    area="input",
    fault="Odd line breaks and markings around the winnowing fast path",
    how="random texts of markings (Kelvin K and long s spellings), \\r, \\x0b-\\x0c, \\x1c-\\x1e, \\x85, "
    "U+2028/9, BOMs, NUL, astral and full-width characters",
    outcome="the C path's fingerprints equal the reference's",
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(BREAKS + ODD + MARKINGS + ("confidential", "ﬁnal", "word ", "第一条 ")),
            st.text(min_size=20, max_size=60),
        ),
        max_size=40,
    ).map("".join)
)
def test_winnow_of_odd_breaks_and_markings_gives_the_reference(text):
    assert winnow_fast.fingerprints(text) == winnow.reference_fingerprints(text)


@pytest.mark.skipif(winnow_fast._native is None, reason="the C extension agent.content._winnow is not built")
def test_empty_and_break_only_texts_through_the_c_path():
    for text in ("", "\n", "\n" * 70_000, "\r" * 70_000, "\x00" * 70_000, "\u2028" * 70_000, "\ufeff"):
        assert winnow_fast.fingerprints(text) == winnow.reference_fingerprints(text) == frozenset()


@pytest.mark.skipif(winnow_fast._native is None, reason="the C extension agent.content._winnow is not built")
@pytest.mark.reliability(
    area="input",
    fault="A marking term spelt with characters RE2's case folding takes for ASCII letters",
    how="every BMP character and a sample of astral ones in place of each letter of each English term's word",
    outcome="the C prefilter (_winnow.marks) never skips a chunk where TERMS_RE matches",
)
def test_the_marks_prefilter_never_skips_a_term_re2_folds_to():
    candidates = [chr(c) for c in range(0x80, 0x10000) if not 0xD800 <= c <= 0xDFFF]
    folding = [c for c in candidates if marking_terms.TERMS_RE.search(f"c{c}nfidential") or c.lower() != c]
    for word in ("confidential", "proprietary"):
        for i in range(len(word)):
            for char in folding:
                text = word[:i] + char + word[i + 1 :]
                if marking_terms.TERMS_RE.search(text):
                    assert winnow_fast._may_be_marked(text), (word, i, hex(ord(char)))
    for text in ("ſecret trade ſecret", "internal uſe only", "do not diſtribute", "confidentia\u212a"):
        if marking_terms.TERMS_RE.search(text):
            assert winnow_fast._may_be_marked(text), text


@pytest.mark.reliability(
    area="input",
    fault="Marking terms between odd line breaks and multi-byte characters",
    how="random texts of terms, U+2028, \\x85, BOMs, astral characters, 商密 after 协",
    outcome="the UTF-8 pass finds the reference's terms at the reference's character offsets",
)
@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(BREAKS + ODD + MARKINGS + ("协商密", "商密")), st.text(max_size=3)), max_size=30)
)
def test_marking_terms_in_utf8_give_the_reference(pieces):
    text = unicodedata.normalize("NFKC", "".join(pieces))
    assert marking_terms.find_terms_in_utf8(text, text.encode()) == marking_terms.find_terms(text)


_rng = random.Random(21)
ID_VALUES = (_resident(_rng), _resident(_rng), _card(_rng, 16), "13812345678", "138 1234 5678", "6222 0212 3456 7890")
ID_NEAR = BREAKS + ODD + ("卡号", "手机", "身份证", "x", "X", "ｘ", "٣", "߁", "①", "-", "−", ",", "，", ":")
_id_text = st.lists(st.one_of(st.sampled_from(ID_VALUES), st.sampled_from(ID_NEAR), st.text(max_size=2)), max_size=20)


@pytest.mark.reliability(
    area="input",
    fault="Resident IDs and cards beside odd line breaks, Unicode digits and full-width X",
    how="random parts of valid IDs, cards and mobiles glued to \\r, \\x85, U+2028, Arabic-Indic digits, "
    "BOMs and context words, in body, footer and table cells",
    outcome="the numpy table path counts what the per-part reference counts",
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            _id_text.map("".join),
            st.sampled_from([BODY, BODY, "footer"]),
            st.sampled_from([None, Cell(0, 0, 0), Cell(0, 1, 0)]),
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([0, 1024, 10**9]),
)
def test_identifier_table_path_at_odd_breaks_gives_the_reference(parts, worded_pass_chars):
    document = Document("text", tuple(TextPart(where, text, cell=cell) for text, where, cell in parts))
    detectors = [cls(lambda: TODAY) for cls in identifiers._IdentifierDetector.__subclasses__()]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(identifiers, "NUMPY_SCAN_CHARS", 0)
        patch.setattr(identifiers, "WORDED_PASS_CHARS", worded_pass_chars)
        fast, reference = _both(document, detectors)
    assert fast == reference


def _rows(text: str, fast: bool):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ooxml, "FAST_SIMPLE_ROWS", fast)
        return ooxml.plain_rows(text, 0, len(text), ["s0", "s1"], 10**9)


_COLUMNS = [ooxml._column_letters(n) for n in range(1, 66)]
SHEETS = {
    "64 cells and a 65th, every row": lambda n: (
        ("<row>" + "".join(f'<c r="{c}1"><v>1</v></c>' for c in _COLUMNS) + "</row>") * max(1, n // 1600)
    ),
    "a row number of n digits": lambda n: '<row><c r="A' + "1" * n + '"><v>1</v></c></row>',
    "a number of n digits": lambda n: '<row><c r="A1"><v>' + "1" * n + "</v></c></row>",
    "a fraction of n zeros": lambda n: '<row><c r="A1"><v>1.' + "0" * n + "</v></c></row>",
    "a fraction of n zeros then 1": lambda n: '<row><c r="A1"><v>1.' + "0" * n + "1</v></c></row>",
    "a fraction of n digits then x": lambda n: '<row><c r="A1"><v>1.' + "10" * (n // 2) + "x</v></c></row>",
    "40 styled cells then a shared string": lambda n: (
        (
            "<row>" + "".join(f'<c r="{c}1" s="1" t="n"><v>-1.05</v></c>' for c in _COLUMNS[:40]) + '<c r="AO1" t="s">'
            "<v>1</v></c></row>"
        )
        * max(1, n // 1700)
    ),
}


@pytest.mark.reliability(
    area="input",
    fault="An xlsx sheet crafted against the simple rows' regex",
    how="10 KB and 1 MB sheets: 65 cells a row, row numbers and values of many digits, fractions of many zeros",
    outcome="rows equal plain_rows's loop at 10 KB and at 1 MB (where quadratic time would run for hours and fail by the "
    "test's timeout)",
)
@pytest.mark.timeout(SCALE_TIMEOUT_S)
@pytest.mark.parametrize("name", list(SHEETS))
def test_simple_rows_on_crafted_sheets_are_linear_and_give_the_loop(name):
    make = SHEETS[name]
    for size in (10_000, AT_SCALE):
        text = make(size)
        assert _rows(text, True) == _rows(text, False), size


PARAGRAPHS = {
    "a paragraph with a long attribute": lambda n: '<w:p a="' + "x" * n + '"><w:r><w:t>a</w:t></w:r></w:p>',
    "many tabs in a paragraph": lambda n: "<w:p>" + "<w:r><w:tab/><w:t>a</w:t></w:r>" * (n // 30) + "</w:p>",
    "nested paragraphs with tabs": lambda n: "<w:p><w:p><w:tab/>" * (n // 20) + "</w:p>" * (n // 10),
    "tabs outside paragraphs": lambda n: "<w:tab/>" * (n // 8),
    "a long prefix": lambda n: "<" + "a" * n + ":p>x</" + "a" * n + ":p>",
    "t holding elements": lambda n: "<w:p><w:t>a<w:x/>b</w:t></w:p>" * (n // 30),
    "empty paragraphs": lambda n: "<w:p/>" * (n // 6),
    "references": lambda n: "<w:p><w:r><w:t>" + "&amp;" * (n // 5) + "</w:t></w:r></w:p>",
    "breaks and tabs": lambda n: ("<w:p><w:br/><w:cr/><w:t>x</w:t>" + "<w:tab/>" * 5 + "</w:p>") * (n // 60),
}


def _paragraphs(text: str, fast: bool):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ooxml, "FAST_PLAIN_MARKS", fast)
        return ooxml.plain_paragraphs(text)


@pytest.mark.reliability(
    area="input",
    fault="A docx member crafted against the plain paragraphs' findall",
    how="10 KB and 1 MB members: long attributes and prefixes, nested paragraphs with tabs, tabs "
    "outside paragraphs, t holding elements",
    outcome="paragraphs equal the marks regex's at 10 KB and at 1 MB (where quadratic time would run for hours and fail by "
    "the test's timeout)",
)
@pytest.mark.timeout(SCALE_TIMEOUT_S)
@pytest.mark.parametrize("name", list(PARAGRAPHS))
def test_plain_paragraphs_on_crafted_members_are_linear_and_give_the_marks(name):
    make = PARAGRAPHS[name]
    for size in (10_000, AT_SCALE):
        text = make(size)
        assert _paragraphs(text, True) == _paragraphs(text, False), size


def test_surrogate_halves_in_separate_texts_still_go_one_by_one():
    """A pair of surrogates split over two paragraphs (or joined into one string) is not a
    character: the UTF-16 encoder refuses both, as the regex finds both."""
    for texts in (["a\ud83d", "\ude00b"], ["\ud83d\ude00"], ["ok", "x\udcff"]):
        with pytest.MonkeyPatch.context() as patch:
            results = []
            for fast in (True, False):
                patch.setattr(document, "FAST_SURROGATES", fast)
                out = budget.Collector(10**6, 10.0)
                out.add_all(BODY, list(texts))
                results.append([p.text for p in out.parts])
        assert results[0] == results[1]
        assert budget.has_surrogates("".join(texts))


@pytest.mark.reliability(
    area="input",
    fault="A text file of 10 million empty lines, or of 50 MB on one line",
    how="inspect_file with the agent's budget (20 MB, 10 s)",
    outcome="the empty lines read whole within the 10 s budget (not flagged truncated); the long line is cut at the byte "
    "budget and flagged truncated",
)
@pytest.mark.parametrize("content", ["empty lines", "one line"])
def test_huge_line_counts_and_one_huge_line_stay_in_budget(tmp_path: Path, content):
    path = tmp_path / "big.txt"
    path.write_bytes(b"\n" * 10_000_000 if content == "empty lines" else b"a" * (50 * 2**20))
    inspection = inspect_file(str(path))  # a read past the time budget would be flagged truncated
    detectors = {d.detector for d in inspection.detections}
    assert detectors == (set() if content == "empty lines" else {"inspection_truncated"})


_XML_PIECES = (
    "商业秘密",
    "CONFIDENTIAL",
    "\u2028",
    "\x85",
    "&#13;",
    "&#10;",
    "&amp;",
    "&lt;",
    "&gt;",
    "\ufeff",
    "\t",
    "  ",
)
_xml_text = st.lists(st.one_of(st.sampled_from(_XML_PIECES), st.text(alphabet="ab 中\t", max_size=3)), max_size=5).map(
    "".join
)
_RUNS = st.one_of(
    _xml_text.map(lambda t: f"<w:r><w:t>{t}</w:t></w:r>"),
    _xml_text.map(lambda t: f'<w:r><w:t xml:space="preserve">{t}</w:t></w:r>'),
    st.sampled_from(
        ["<w:r><w:tab/></w:r>", "<w:r><w:br/></w:r>", "<w:r><w:cr/></w:r>", '<w:bookmarkStart w:id="1"/>', "<w:p/>"]
    ),
)


def _extracted_both_ways(path: Path, flag: str) -> list:
    from agent.content.extract import extract

    found = []
    for fast in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ooxml, flag, fast)
            document = extract(str(path), path.name)
            found.append((document.problem, [(p.where, p.text, p.cell) for p in document.parts]))
    return found


@pytest.mark.reliability(
    area="input",
    fault="A docx whose paragraphs mix markings with line separators, references and tabs",
    how="random paragraphs of runs holding U+2028, \\x85, &#13;, BOMs, tabs, breaks, empty paragraphs",
    outcome="the plain paragraphs' findall extracts what the marks regex extracts",
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.lists(_RUNS, max_size=5).map(lambda runs: "<w:p>" + "".join(runs) + "</w:p>"), min_size=1, max_size=5)
)
def test_docx_paragraphs_with_odd_text_give_the_marks(tmp_path_factory, paragraphs):
    from tests.agent.content.makers import W, _office, write_zip

    body = f"<w:document {W}><w:body>{''.join(paragraphs)}</w:body></w:document>"
    path = write_zip(tmp_path_factory.mktemp("docx") / "a.docx", {**_office("t"), "word/document.xml": body})
    fast, reference = _extracted_both_ways(path, "FAST_PLAIN_MARKS")
    assert fast == reference


_VALUES = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["1.0", "1.50", "0.000", "-0", "1e5", "01", "1.", ".5", "00", "-1.010"]),
)


@pytest.mark.reliability(
    area="input",
    fault="An xlsx of simple rows whose values and shared strings are odd",
    how="numbers with trailing zeros, exponents, leading zeros; shared strings blank, spaced, with U+2028 or a marking",
    outcome="the simple rows' passes extract what plain_rows's loop extracts",
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.lists(st.one_of(_VALUES, st.integers(0, 3)), min_size=1, max_size=4), min_size=1, max_size=4),
    st.lists(st.sampled_from(["商业秘密", " a  b ", "", " ", "\u3000x", "x\u2028y", "&amp;"]), min_size=4, max_size=4),
)
def test_xlsx_simple_rows_with_odd_values_give_the_loop(tmp_path_factory, rows, shared):
    from tests.agent.content.makers import S, _office, write_zip

    def cell(column: str, row: int, value) -> str:
        if isinstance(value, int):
            return f'<c r="{column}{row}" t="s"><v>{value}</v></c>'
        return f'<c r="{column}{row}"><v>{value}</v></c>'

    sheet = "".join(
        f'<row r="{r}">' + "".join(cell("ABCD"[i], r, v) for i, v in enumerate(values)) + "</row>"
        for r, values in enumerate(rows, start=1)
    )
    strings = "".join(f'<si><t xml:space="preserve">{s}</t></si>' for s in shared)
    members = {
        **_office("t"),
        "xl/workbook.xml": f"<workbook {S}/>",
        "xl/sharedStrings.xml": f"<sst {S}>{strings}</sst>",
        "xl/worksheets/sheet1.xml": f"<worksheet {S}><sheetData>{sheet}</sheetData></worksheet>",
    }
    path = write_zip(tmp_path_factory.mktemp("xlsx") / "a.xlsx", members)
    fast, reference = _extracted_both_ways(path, "FAST_SIMPLE_ROWS")
    assert fast == reference
