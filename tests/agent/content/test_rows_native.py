"""The C scan of a sheet's simple rows (_winnow.sheet_rows, ooxml.native_rows) gives what
ooxml.simple_rows gives whenever it answers, and answers wherever simple_rows answers but for a
shared string simple_rows would normalise or leave out:

- random sheets of 1 to 70 columns (numbers of every shape simple_rows keeps or refuses, shared
  indexes in and out of range, odd and wide shared strings), as written and mutated (a gap, the
  attributes swapped, white space, empty rows, inline strings, formulas, a cut end), with budgets
  at the limit; plain_rows still reads as the loop (_plain_rows) reads;
- whole workbooks (the fixtures, the bench's corpus, rosters and PII tables written by openpyxl)
  extracted with NATIVE_ROWS on and off;
- hostile calls (garbage, 200,000 cells, odd spans, a shared list that is not one) answer or
  refuse without crashing.

Checked to fail with the C broken on purpose (a space for the tab between cells, a gap in the
columns accepted, the budget one off, a leading space let through, ASCII rows made Latin-1, a
fraction of zeros kept, the used set left empty, a row's tab or U+3000 refused, a 19-digit index
taken, "</row>" read past the span, the SSE2 blocks missing two spaces, U+00A0 or U+2000..U+3000)."""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content import ooxml
from agent.content.extract import extract

native = pytest.importorskip("agent.content._winnow")

PLAIN = ["姓名", "a b", "x", "机密文件 第3页", "\U0001f600 astral \U00020000", "é", "ÿ", "Āb", "110105194912310021",
         "a\x00b", "&", "<v>"]  # fmt: skip
ODD = ["", " ", " a", "a ", "a  b", "x\ty", "p\xa0q", "机密\u3000文件", "l\u2028m", "\x85", "a\x1cb", "\n"]
NUMBERS = ["0", "7", "-5", "12345", "007", "2.5", "-0.50", "1.05", "0.000001", "-0", "9" * 300, "1." + "0" * 50 + "1"]
REFUSED = ["1.0", "1.", ".5", "1E+17", "1.2E+3", "-", "", "+1", " 1", "1.00", "1e5", "--1", "1.0x", "１"]
MUTATIONS = [
    ('r="B', 'r="C'),  # a gap in the columns
    (' s="3" t="s"', ' t="s" s="3"'),  # attributes in another order
    ("</c><c", "</c> <c"),  # white space between cells
    ("</c><c", "</c>\n<c"),
    ("</row>", "</row><row/>"),
    ("</row>", "</row><row></row>"),
    ('<c r="A', '<c r="A1"/><c r="A'),
    ("<row>", '<row><c r="A1" t="inlineStr"><is><t>x</t></is></c></row><row>'),
    ("<v>", "<f>SUM(A1)</f><v>"),
    ('r="A', 'r="a'),
    ("</row>", ""),
    ("<row", "<rowx"),
    ("<row>", "<row/>"),
    ("<row>", '<row r="1/2">'),
    ('"><v>', '" ><v>'),
    ("</v></c>", "</v> </c>"),
    ('t="s"', 't="str"'),
]


def plain(value: str) -> bool:
    """A shared string simple_rows keeps as it is."""
    return bool(value) and " ".join(value.split()) == value


def _cell(rng: random.Random, column: int, row: int, shared: list[str]) -> str:
    letters = ooxml._column_letters(column)
    style = rng.choice(["", "", ' s="3"', ' s="0012"'])
    if rng.random() < 0.5:
        return f'<c r="{letters}{row}"{style} t="s"><v>{rng.randrange(len(shared))}</v></c>'
    kind = rng.choice(["", "", ' t="n"'])
    return f'<c r="{letters}{row}"{style}{kind}><v>{rng.choice(NUMBERS)}</v></c>'


NUMBER_CELL = re.compile(r'(<c r="[A-Z]+[0-9]+"(?: s="[0-9]+")?(?: t="n")?><v>)[^<]*(</v>)')
INDEX_CELL = re.compile(r'( t="s"><v>)[0-9]+(</v>)')
BAD_INDEXES = ["{count}", "999999999999999999", "0" * 19, "1" * 19, "", "-1", "1 ", "１"]


def _flawed(rng: random.Random, sheet: str, shared: list[str], flaw: str) -> str:
    """The sheet (or its shared strings) with one flaw: a number or index simple_rows refuses, a
    shared string it normalises, or a mutation of MUTATIONS."""
    if flaw == "number" and (cells := list(NUMBER_CELL.finditer(sheet))):
        m = rng.choice(cells)
        return sheet[: m.end(1)] + rng.choice(REFUSED) + sheet[m.start(2) :]
    if flaw == "index" and (cells := list(INDEX_CELL.finditer(sheet))):
        m = rng.choice(cells)
        return sheet[: m.end(1)] + rng.choice(BAD_INDEXES).format(count=len(shared)) + sheet[m.start(2) :]
    if flaw == "shared":
        shared[rng.randrange(len(shared))] = rng.choice(ODD)
        return sheet
    old, new = rng.choice(MUTATIONS)
    if old not in sheet:
        return sheet
    at = rng.randrange(sheet.count(old))
    pieces = sheet.split(old)
    return old.join(pieces[: at + 1]) + new + old.join(pieces[at + 1 :])


def random_sheet(rng: random.Random, ordinary: bool) -> tuple[str, int, int, list[str]]:
    """A worksheet's text and its sheetData span: rows of cells A, B, C... as simple_rows reads
    them, every shared string kept as it is; unless ordinary, with one flaw (sometimes two): a
    refused number or index, an odd shared string, a mutation, a row of 65 to 70 cells, a cut."""
    shared = [rng.choice(PLAIN) for _ in range(rng.randint(1, 12))]
    flaws = (
        [] if ordinary else rng.sample(["number", "index", "shared", "mutation", "wide", "cut"], rng.choice([1, 1, 2]))
    )
    rows = []
    for n in range(1, rng.choice([0, 1, 2, 5, 30]) + 1):
        width = rng.choice([1, 1, 2, 3, 5, 26, 27, 53, 64])
        if "wide" in flaws and rng.random() < 0.3:
            width = rng.choice([65, 70])
        start = rng.choice(['<row r="{n}">', "<row>", '<row r="{n}" spans="1:9">', '<row\tr="{n}">',
                            '<row\u3000r="{n}">', '<row x="a<b">'])  # fmt: skip
        cells = "".join(_cell(rng, column, n, shared) for column in range(1, width + 1))
        rows.append(start.format(n=n) + cells + "</row>")
    sheet = "".join(rows)
    for flaw in flaws:
        sheet = _flawed(rng, sheet, shared, flaw)
    wide = rng.choice(["", "", "页", "\U0001f600"])  # the text 2 or 4 bytes a character
    text = f"<worksheet{wide}><sheetData>{sheet}</sheetData></worksheet>"
    begin, end = text.index("<sheetData>") + len("<sheetData>"), text.rindex("</sheetData>")
    if "cut" in flaws:
        end = rng.randint(begin, len(text))  # a span that stops anywhere, inside a cell too
    return text, begin, end, shared


def same_answer(text: str, begin: int, end: int, shared: list[str], chars_left: int) -> tuple | None:
    """The C's answer, checked against simple_rows's: equal when it answers (and an ASCII row an
    ASCII str), and refused only where simple_rows refuses or would normalise a shared string it
    used."""
    found = native.sheet_rows(text, begin, end, shared, chars_left)
    simple = ooxml.simple_rows(text, begin, end, shared, chars_left)
    if found is not None:
        assert found == simple
        rows, row, chars, used = found
        assert type(rows) is list and row == [] and type(chars) is int and type(used) is set
        # an ASCII row made as ASCII (CPython's one form for it), its size that of a fresh copy; not
        # compared for other rows, whose size counts a UTF-8 copy once anything asked for one
        # (str.isascii reads the form's flag, so the content is asked: one UTF-8 byte a character)
        assert all(sys.getsizeof(r) == sys.getsizeof("".join(list(r))) for r in rows if len(r.encode()) == len(r))
    else:
        assert simple is None or not all(plain(shared[i]) for i in simple[3]), (text[begin:end], shared)
    return found


def test_rows_take_the_simple_sheets():
    text = '<sheetData><row r="1"><c r="A1" t="s"><v>1</v></c><c r="B1" s="2"><v>2.5</v></c></row>'
    text += '<row r="2" spans="1:2"><c r="A2"><v>-7</v></c></row></sheetData>'
    begin, end = len("<sheetData>"), text.index("</sheetData>")
    assert native.sheet_rows(text, begin, end, ["x", "a b"], 1000) == (["a b\t2.5", "-7"], [], 11, {1})
    assert native.sheet_rows(text, begin, end, ["x", "a  b"], 1000) is None  # simple_rows normalises it
    assert native.sheet_rows(text.replace('r="B1"', 'r="C1"'), begin, end, ["x", "y"], 1000) is None
    assert native.sheet_rows(text, begin, begin, ["x"], 18) == ([], [], 0, set())
    assert native.sheet_rows(text, begin, begin, ["x"], 17) is None


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32), ordinary=st.booleans(), budget=st.sampled_from([1 << 40, 200, 40, 5]))
def test_random_sheets_read_as_simple_rows_reads(seed, ordinary, budget):
    text, begin, end, shared = random_sheet(random.Random(seed), ordinary)
    found = same_answer(text, begin, end, shared, budget)
    if ordinary and budget == 1 << 40:
        assert found is not None  # simple_rows answers every ordinary sheet: so must the C
    assert ooxml.plain_rows(text, begin, end, shared, budget) == ooxml._plain_rows(text, begin, end, shared, budget)


def test_the_fast_path_answers_most_sheets():
    """Over many random sheets: the C answers every ordinary one, and never differs."""
    rng = random.Random(21)
    answered = {True: 0, False: 0}
    for n in range(1500):
        ordinary = n % 2 == 0
        text, begin, end, shared = random_sheet(rng, ordinary)
        answered[ordinary] += same_answer(text, begin, end, shared, 1 << 40) is not None
    assert answered[True] == 750
    assert answered[False] > 50  # mutations that leave a simple sheet (or none happened)


SPACES = [" ", "\t", "\n", "\x1c", "\x85", "\xa0", "\u1680", "\u2000", "\u200a", "\u2028", "\u202f", "\u205f",
          "\u3000"]  # fmt: skip
NOT_SPACES = ["a", "Z", "\x01", "\x1b", "\x7f", "\x84", "\x86", "\xa1", "é", "页", "\u167f", "\u200b", "\u2060",
              "\u2fff", "\u3001", "\uffff", "\U0001f600"]  # fmt: skip


def test_shared_strings_kept_exactly_where_split_keeps_them():
    """Shared strings of 0 to 70 characters (16 bytes and more are checked a block at a time),
    one or two spaces or white space of each kind anywhere: the C keeps a string exactly where
    " ".join(value.split()) does."""
    rng = random.Random(34)
    sheet = '<row><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
    kept = 0
    for _ in range(6000):
        letters = rng.sample(NOT_SPACES, rng.randint(1, 3))
        value = "".join(rng.choice(letters) if rng.random() < 0.85 else " " for _ in range(rng.randint(0, 70)))
        for _ in range(rng.choice([0, 0, 1, 2])):
            at = rng.randint(0, len(value))
            value = value[:at] + rng.choice(SPACES + ["  "]) + value[at:]
        found = same_answer(sheet, 0, len(sheet), [value, "x"], 1 << 40)
        assert (found is not None) == plain(value), ascii(value)
        kept += found is not None
    assert 1000 < kept < 5000


def test_budgets_near_the_limit():
    rng = random.Random(5)
    for _ in range(200):
        text, begin, end, shared = random_sheet(rng, True)
        chars = native.sheet_rows(text, begin, end, shared, 1 << 40)[2]
        for budget in (chars + 19, chars + 18, chars + 17, chars, 18, 17, 0, -1, 10**40, -(10**40)):
            found = same_answer(text, begin, end, shared, budget)
            assert (found is not None) == (chars + 18 <= budget)


def test_spans_ending_anywhere_are_read_within_them():
    """Every end in small sheets, the text past it a well-formed rest: nothing past end is read."""
    rng = random.Random(13)
    for _ in range(40):
        text, begin, end, shared = random_sheet(rng, True)
        if len(text) > 3000:
            continue
        for cut in range(begin, len(text) + 1):
            same_answer(text, begin, cut, shared, 1 << 40)
            same_answer(text, begin + 1, cut, shared, 1 << 40)


# --- whole workbooks ------------------------------------------------------------------------------


def _extracted_both_ways(path: Path, monkeypatch) -> tuple[object, int]:
    answers = []

    def counted(*args):
        found = native_rows(*args)
        answers.append(found is not None)
        return found

    native_rows = ooxml.native_rows
    documents = []
    for on in (True, False):
        monkeypatch.setattr(ooxml, "NATIVE_ROWS", on)
        monkeypatch.setattr(ooxml, "native_rows", counted)
        documents.append(extract(str(path), path.name))
    assert documents[0] == documents[1], path.name
    return documents[0], sum(answers)


def _shared_workbook(path: Path, table: list[list[str]]) -> Path:
    """The table as Excel writes it: text cells as shared strings, digits as number cells."""
    from tests.agent.content.makers import S, _office, write_zip

    strings: dict[str, int] = {}

    def cell(column: int, row: int, value: str) -> str:
        ref = f"{ooxml._column_letters(column)}{row}"
        if value.isascii() and value.isdigit() and not value.startswith("0"):
            return f'<c r="{ref}"><v>{value}</v></c>'
        return f'<c r="{ref}" t="s"><v>{strings.setdefault(value, len(strings))}</v></c>'

    rows = "".join(
        f'<row r="{r}">' + "".join(cell(c, r, v) for c, v in enumerate(values, start=1)) + "</row>"
        for r, values in enumerate(table, start=1)
    )
    shared = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
    return write_zip(path, {
        **_office("table"),
        "xl/workbook.xml": f"<workbook {S}/>",
        "xl/sharedStrings.xml": f'<sst {S} count="{len(strings)}">{shared}</sst>',
        "xl/worksheets/sheet1.xml": f"<worksheet {S}><sheetData>{rows}</sheetData></worksheet>",
    })  # fmt: skip


def test_workbooks_read_the_same_both_ways(tmp_path, monkeypatch):
    """The fixture, the bench's workbook, rosters and customer lists (shared strings and numbers
    as Excel writes them; inline strings as openpyxl writes them, which the loop reads)."""
    from bench import corpus
    from bench.fileserver import genres, writers
    from tests.agent.content import makers

    paths = [makers.xlsx(tmp_path / "f.xlsx")]
    paths += map(Path, corpus.documents(str(tmp_path / "corpus"), "xlsx", 1, 64 * 1024))
    rng = random.Random(3)
    firm = genres.FIRMS[0]
    for n, doc in enumerate([genres.roster(rng, firm, 300), genres.customers(rng, firm, 200)]):
        paths.append(_shared_workbook(tmp_path / f"shared{n}.xlsx", [[doc.title], *doc.table]))
        paths.append(writers.xlsx(doc, tmp_path / f"table{n}.xlsx"))
        paths.append(writers.xlsx(doc, tmp_path / f"numbers{n}.xlsx", numeric=True))
    fast = 0
    for path in paths:
        document, answered = _extracted_both_ways(path, monkeypatch)
        assert len(document.parts) > 1, path.name
        fast += answered
    assert fast == 3  # the bench's workbook and the two shared-string tables by the C


def test_pii_workbooks_read_the_same_both_ways(tmp_path, monkeypatch):
    from bench.fileserver import pii

    files = [path for path, _, _ in pii.build(random.Random(15), tmp_path, 0.1) if path.suffix == ".xlsx"]
    assert len(files) >= 3
    for path in files:  # openpyxl's inline strings: the loop reads them, the C only says None
        assert _extracted_both_ways(path, monkeypatch)[1] == 0


# --- hostile calls --------------------------------------------------------------------------------

PIECES = ["<row>", "<row ", '<c r="A1">', '<c r="A1" t="s"><v>', '<c r="B1"><v>', "<v>", "</v></c>", "</v>", "</c>",
          "</row>", "1", "0", ".", "-", '"', ">", "/", "\x00", "\U0001f600", "页", " ", "\t", "A", "BL", 't="s"']  # fmt: skip


def test_garbage_never_crashes():
    rng = random.Random(8)
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40)))
        shared = [rng.choice(PLAIN + ODD) for _ in range(rng.randint(0, 3))]
        begin, end = rng.randint(-3, len(text) + 3), rng.randint(-3, len(text) + 3)
        found = native.sheet_rows(text, begin, end, shared, rng.choice([1 << 40, 30, -5]))
        if 0 <= begin <= end <= len(text):
            same_answer(text, begin, end, shared, 1 << 40)
        else:
            assert found is None  # a span past the text is never a sheet's


def test_huge_sheets():
    rows = "".join(
        f'<row r="{n}">' + "".join(f'<c r="{c}{n}" t="s"><v>{n % 7}</v></c>' for c in "ABCDEFGHIJ") + "</row>"
        for n in range(1, 20_001)
    )  # 200,000 cells
    shared = [f"值{i}" for i in range(7)]
    assert same_answer(rows, 0, len(rows), shared, 1 << 40) is not None
    assert same_answer(rows, 0, len(rows), shared, 100_000) is None
    wide = '<row><c r="A1"><v>1</v></c>' + "".join(
        f'<c r="{ooxml._column_letters(c)}1"><v>1</v></c>' for c in range(2, 66)
    )
    assert native.sheet_rows(wide + "</row>", 0, len(wide) + 6, [], 1 << 40) is None  # 65 columns
    digits = f'<row><c r="A1"><v>1.{"0" * 1_000_000}1</v></c></row>'
    assert same_answer(digits, 0, len(digits), [], 1 << 40) is not None
    many = [f"s{i}" for i in range(1_000_000)]
    last = '<row><c r="A1" t="s"><v>999999</v></c></row>'
    assert native.sheet_rows(last, 0, len(last), many, 1 << 40) == (["s999999"], [], 8, {999_999})


def test_odd_calls_are_refused():
    text = '<row><c r="A1" t="s"><v>0</v></c></row>'
    n = len(text)
    for begin, end in ((-1, n), (0, n + 1), (5, 3), (1 << 62, 1 << 62), (-(1 << 62), n), (n, n - 1)):
        assert native.sheet_rows(text, begin, end, ["x"], 1 << 40) is None
    with pytest.raises(OverflowError):
        native.sheet_rows(text, 0, 1 << 70, ["x"], 1 << 40)
    for shared in (("x",), None, "x", {0: "x"}):
        with pytest.raises(TypeError):
            native.sheet_rows(text, 0, n, shared, 1 << 40)
    with pytest.raises(TypeError):
        native.sheet_rows(text.encode(), 0, n, ["x"], 1 << 40)
    with pytest.raises(TypeError):
        native.sheet_rows(text, 0, n, ["x"], 1.5)
    assert native.sheet_rows(text, 0, n, [None], 1 << 40) is None  # not a str: simple_rows says
    assert native.sheet_rows(text, 0, n, [b"x"], 1 << 40) is None

    class Text(str):
        pass

    assert native.sheet_rows(text, 0, n, [Text("a b")], 1 << 40) == (["a b"], [], 4, {0})
