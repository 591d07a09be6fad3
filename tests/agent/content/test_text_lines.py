"""Plain text's lines become parts at once (text.read_text through Collector.add_all), as the
reference loop made them: decode, then add() per line, with the byte, text and part budgets."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content import budget
from agent.content.budget import Collector, OutOfBudget
from agent.content.document import BODY
from agent.content.text import decode, read_text

LINES = st.lists(
    st.one_of(
        st.sampled_from(["", " ", "\t", " \r", "\u3000", "\x0c", "第3条 保密", " x ", "\u2028", "\r"]),
        st.text(max_size=6),
    ),
    max_size=40,
)


def _reference(data: bytes, out: Collector) -> None:
    """read_text's loop before the parts were made at once."""
    chunk = data[: max(out.bytes_left, 0)]
    out.take_bytes(len(chunk))
    out.truncated = out.truncated or len(chunk) < len(data)
    for line in decode(chunk, len(chunk) == len(data)).splitlines():
        out.add(BODY, line)


def _parts(read, data: bytes, max_bytes: int, chars_left: int):
    out = Collector(max_bytes, 30.0)
    out.chars_left = chars_left
    try:
        read(data, out)
    except OutOfBudget as e:
        return out.parts, out.chars_left, out.truncated, str(e)
    return out.parts, out.chars_left, out.truncated, None


@settings(max_examples=400, deadline=None)
@given(
    lines=LINES,
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "gb18030"]),
    max_bytes=st.sampled_from([1 << 20, 17]),
    chars_left=st.sampled_from([1 << 20, 12, 0]),
    max_parts=st.sampled_from([200_000, 3]),
)
def test_read_text_adds_the_lines_as_the_reference_does(lines, newline, encoding, max_bytes, chars_left, max_parts):
    data = newline.join(lines).encode(encoding, "replace")
    budget.MAX_PARTS, saved = max_parts, budget.MAX_PARTS
    try:
        fast = _parts(lambda d, out: read_text(io.BytesIO(d), out), data, max_bytes, chars_left)
        reference = _parts(_reference, data, max_bytes, chars_left)
    finally:
        budget.MAX_PARTS = saved
    assert fast == reference
