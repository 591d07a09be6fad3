"""inspect.fingerprinted_text (the text winnowed) is document.text_of(*TEXT_PLACES), the
reference, on random documents: the name first, elsewhere, twice or missing, parts of every place
and of a place that is none of PLACES, texts with line breaks or empty."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content import inspect
from agent.content.document import BODY, FOOTER, HEADER, NAME, PLACES, TITLE, Document, TextPart

wheres = st.sampled_from((*PLACES, BODY, BODY, "elsewhere"))
texts = st.sampled_from(("", "甲", "a\nb", "报告.docx", " ")) | st.text(max_size=5)
parts = st.lists(st.tuples(wheres, texts), max_size=8)
named_first = st.tuples(texts, parts).map(lambda named: [(NAME, named[0]), *named[1]])


@settings(max_examples=500, deadline=None)
@given(parts | named_first)
def test_the_text_fingerprinted_is_the_text_of_every_place_but_the_name(pieces):
    document = Document("text", tuple(TextPart(where, text) for where, text in pieces))
    assert inspect.fingerprinted_text(document) == document.text_of(*inspect.TEXT_PLACES)


def test_extraction_s_order_takes_the_fast_way():
    document = Document(
        "docx", (TextPart(NAME, "a.docx"), TextPart(TITLE, "t"), TextPart(BODY, "x"), TextPart(FOOTER, "f"))
    )
    assert inspect.fingerprinted_text(document) == "t\nx\nf"
    assert inspect.fingerprinted_text(Document("docx", (TextPart(HEADER, "h"), TextPart(NAME, "a")))) == "h"
