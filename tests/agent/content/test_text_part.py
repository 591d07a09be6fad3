"""TextPart is a tuple (issue 21 item 3: parts made at once by C) that behaves as the frozen
dataclass it replaced: made by position or keyword with its text made readable, read by field
name, immutable, equal and hashed as the tuple of its fields, the same repr, and a copy or a
pickle (or _replace) that goes through readable again."""

from __future__ import annotations

import copy
import os
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content.document import BODY, FOOTER, NAME, Cell, TextPart

RAW = os.fsdecode("商业秘密".encode() + b"\xff.docx")  # a name's odd byte, kept as a surrogate escape


def test_fields_by_name_and_defaults():
    part = TextPart(BODY, "text")
    assert (part.where, part.text, part.cell, part.page_line) == (BODY, "text", None, 0)
    cell = Cell(2, 3, 4)
    part = TextPart(where=FOOTER, text="t", cell=cell, page_line=7)
    assert (part.where, part.text, part.cell, part.page_line) == (FOOTER, "t", cell, 7)


@pytest.mark.parametrize("make", [lambda: TextPart(NAME, RAW), lambda: TextPart(where=NAME, text=RAW, page_line=2)])
def test_made_by_position_or_keyword_the_text_is_readable(make):
    assert make().text == "商业秘密\ufffd.docx"


def test_immutable_and_no_other_attribute():
    part = TextPart(BODY, "text")
    with pytest.raises(AttributeError):
        part.text = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        part.extra = 1  # type: ignore[attr-defined]


def test_repr_is_the_dataclass_repr():
    part = TextPart(BODY, "a", cell=Cell(0, 1, 2), page_line=3)
    assert repr(part) == "TextPart(where='body', text='a', cell=Cell(table=0, row=1, column=2), page_line=3)"


@settings(max_examples=200, deadline=None)
@given(
    where=st.sampled_from([BODY, FOOTER, NAME]),
    text=st.text(max_size=6),
    cell=st.one_of(st.none(), st.builds(Cell, st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))),
    page_line=st.integers(0, 5),
    other=st.tuples(st.sampled_from([BODY, FOOTER]), st.text(max_size=2), st.none(), st.integers(0, 1)),
)
def test_equal_and_hashed_as_the_dataclass_was(where, text, cell, page_line, other):
    part = TextPart(where, text, cell=cell, page_line=page_line)
    fields = (part.where, part.text, part.cell, part.page_line)
    assert hash(part) == hash(fields)  # what a frozen dataclass's __hash__ gives
    assert part == TextPart(*fields)
    assert (part == TextPart(*other)) == (fields == other)


def test_copies_pickles_and_replace_stay_parts_with_readable_text():
    part = TextPart(BODY, RAW, cell=Cell(1, 2, 3), page_line=4)
    for again in (copy.copy(part), copy.deepcopy(part), pickle.loads(pickle.dumps(part))):
        assert type(again) is TextPart and again == part
    replaced = part._replace(text=RAW + "\udc80")
    assert type(replaced) is TextPart
    assert replaced.text == "商业秘密\ufffd.docx\ufffd"
    assert replaced.page_line == 4
