"""Two per-member savings held to their references (issue 21 item 3):

- zipread's whole-member read takes the local header, name, extra field and data in one read
  (FAST_ONE_READ) instead of three: the same bytes or the same None as reading them apart, on
  good, damaged and cut zips and a local extra field longer than the read's slack;
- xmlscan._decoded finds comments, CDATA and instructions by one search (FAST_MARKUP) instead of
  three scans: the same answer on random members of those pieces.

Checked to fail with the name's slice one byte off, the data sliced from the wrong offset, and
the search starting at 0 (the declaration then counts as an instruction)."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import xmlscan, zipread
from agent.content.budget import Collector
from tests.agent.content.test_extraction_fast import _damaged, _docx_members


def _with_extra(extra_bytes: int) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in _docx_members("extra field").items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.extra = b"\xfe\xca" + (extra_bytes - 4).to_bytes(2, "little") + bytes(extra_bytes - 4)
            z.writestr(info, data)
    return bytearray(buffer.getvalue())


def _cases() -> dict[str, bytes]:
    cases = {label: bytes(data) for label, data in _damaged().items()}
    cases["extra 40"] = bytes(_with_extra(40))
    cases["extra 2000"] = bytes(_with_extra(2000))  # past the slack: read apart
    return cases


def _reads(data: bytes) -> list[bytes | None]:
    z = zipread.BoundedZip(io.BytesIO(data))
    return [z._whole(info, Collector(1 << 20, 30.0), 1 << 20) for info in z.infos()]


@pytest.mark.parametrize("case", list(_cases()))
@pytest.mark.parametrize("slack", [512, 0, 3])
def test_one_read_gives_what_reading_apart_gives(case, slack, monkeypatch):
    data = _cases()[case]
    monkeypatch.setattr(zipread, "ONE_READ_SLACK", slack)
    fast = _reads(data)
    monkeypatch.setattr(zipread, "FAST_ONE_READ", False)
    assert fast == _reads(data)
    if case in ("good", "extra 40", "extra 2000"):
        assert all(read is not None for read in fast)


def test_a_member_at_the_end_of_a_cut_file(monkeypatch):
    data = bytes(_damaged()["good"])
    z = zipread.BoundedZip(io.BytesIO(data))
    last = max(z.infos(), key=lambda info: info.header_offset)
    for cut in (last.header_offset + 20, last.header_offset + 40, last.header_offset + 60):
        reads = []
        for fast in (True, False):
            monkeypatch.setattr(zipread, "FAST_ONE_READ", fast)
            z._file = io.BytesIO(data[:cut])
            reads.append(z._whole(last, Collector(1 << 20, 30.0), 1 << 20))
        assert reads == [None, None]


PIECES = st.sampled_from(
    [b"<?xml version='1.0'?>", b"<?pi x?>", b"<!-- c -->", b"<![CDATA[x]]>", b"<!DOCTYPE d>", b"<a>", b"</a>",
     b"text", b"<", b"?", b"!", b"--", b"[", b"\xef\xbb\xbf", b"<?xml", b"\xe6\x9c\xba", b"\xff"]
)  # fmt: skip


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(PIECES, max_size=8))
def test_one_search_for_odd_markup_answers_as_three_scans(pieces, monkeypatch):
    data = b"".join(pieces)
    monkeypatch.setattr(xmlscan, "FAST_MARKUP", True)  # each example sets both (the fixture is not reset)
    fast = xmlscan._decoded(data)
    monkeypatch.setattr(xmlscan, "FAST_MARKUP", False)
    assert fast == xmlscan._decoded(data)


@pytest.mark.parametrize(
    "data, plain",
    [(b"<?xml version='1.0'?><a/>", True), (b"<?xml version='1.0'?><a/><?pi?>", False), (b"<a/><?xml?>", False),
     (b"<a><!-- c --></a>", False), (b"<a><![CDATA[x]]></a>", False), (b"\xef\xbb\xbf<?xml?><a/>", True)],
)  # fmt: skip
def test_chosen_members_are_plain_or_not(data, plain, monkeypatch):
    for fast in (True, False):
        monkeypatch.setattr(xmlscan, "FAST_MARKUP", fast)
        assert (xmlscan._decoded(data) is not None) == plain
