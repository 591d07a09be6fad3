"""zipread's one_chunk written out in one function (FAST_ONE_CHUNK) answers what its reference
(getinfo and _whole) answers: the same bytes or None or refusal, the same bytes taken and clock
checks, on good, damaged and encrypted zips, members cut short, local extra fields past the read's slack,
names in ASCII, UTF-8 and cp437, byte budgets at the member's size, and any byte of a member's
local header or data changed.

Checked to fail with the fast path broken on purpose: the signature not checked; the CRC not
checked; the byte budget's edge taken as size > bytes_left; the local name not compared; the
window used for a member before it; the window taken as the file's end when it is not."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content import zipread
from agent.content.budget import Collector, OutOfBudget, Refused
from tests.agent.content.test_member_reads import _cases
from tests.agent.content.test_zip_names import _cp437_zip, _zip


class _Clock:
    """Counts the clock's reads; the deadline passes at the read numbered `stop` (never: -1)."""

    def __init__(self, stop: int = -1) -> None:
        self.calls, self.stop = 0, stop

    def __call__(self) -> float:
        self.calls += 1
        return 100.0 if self.calls - 1 == self.stop else 0.0


def _answers(data: bytes, bytes_left: int | None, stop: int, backwards: bool = False) -> list[tuple]:
    """What one_chunk does with each member (in the file's order, or backwards: a window behind
    the member): its answer, the bytes left, the clock's reads."""
    z = zipread.BoundedZip(io.BytesIO(data))
    answers = []
    for name in sorted(z.names(), key=lambda name: z._zip.getinfo(name).header_offset, reverse=backwards):
        clock = _Clock(stop)
        out = Collector(1 << 20, 10.0, clock)
        if bytes_left is not None:
            out.bytes_left = bytes_left
        try:
            answer = ("read", z.one_chunk(name, out))
        except (Refused, OutOfBudget) as e:
            answer = (type(e).__name__, str(e))
        answers.append((name, answer, out.bytes_left, clock.calls, z.member_truncated))
    return answers


def _both(data: bytes, monkeypatch, bytes_left: int | None = None, stop: int = -1, backwards: bool = False) -> list:
    results = []
    for fast in (True, False):
        monkeypatch.setattr(zipread, "FAST_ONE_CHUNK", fast)
        results.append(_answers(data, bytes_left, stop, backwards))
    assert results[0] == results[1]
    return results[0]


def _all_cases() -> dict[str, bytes]:
    cases = _cases()
    cases["utf-8 name"] = _zip("ppt/slides/幻灯片1.xml")
    cases["cp437 name"] = _cp437_zip("ppt/slides/slïde1.xml")
    encrypted = bytearray(cases["good"])
    encrypted[encrypted.find(b"PK\x01\x02") + 8] |= 1
    cases["encrypted flag"] = bytes(encrypted)
    descriptor = bytearray(cases["good"])
    descriptor[descriptor.find(b"PK\x01\x02") + 8] |= 0x8  # a data descriptor: not read whole here or there
    cases["data descriptor flag"] = bytes(descriptor)
    return cases


@pytest.mark.parametrize("case", list(_all_cases()))
@pytest.mark.parametrize("slack", [512, 0, 3])
@pytest.mark.parametrize("window", [zipread.WINDOW_BYTES, 1, 200])
@pytest.mark.parametrize("backwards", [False, True])
def test_one_chunk_answers_as_its_reference(case, slack, window, backwards, monkeypatch):
    data = _all_cases()[case]
    monkeypatch.setattr(zipread, "ONE_READ_SLACK", slack)
    monkeypatch.setattr(zipread, "WINDOW_BYTES", window)
    answers = _both(data, monkeypatch, backwards=backwards)
    if case in ("good", "stored", "extra 40", "extra 2000", "utf-8 name", "cp437 name"):
        assert all(answer[1][0] == "read" and answer[1][1] is not None for answer in answers)


@pytest.mark.parametrize("stop", [-1, 0, 1, 2])
@pytest.mark.parametrize("margin", [-1, 0, 1, 2])
def test_budget_edges_and_deadlines_as_the_reference(stop, margin, monkeypatch):
    data = _all_cases()["good"]
    z = zipread.BoundedZip(io.BytesIO(data))
    for info in z.infos():
        _both(data, monkeypatch, bytes_left=info.file_size + margin, stop=stop)


@pytest.mark.parametrize("past_header", [-10, 0, 20, 40, 60])
def test_a_member_cut_short_answers_as_the_reference(past_header, monkeypatch):
    data = _all_cases()["good"]
    z = zipread.BoundedZip(io.BytesIO(data))
    last = max(z.infos(), key=lambda info: info.header_offset)
    results = []
    for fast in (True, False):
        monkeypatch.setattr(zipread, "FAST_ONE_CHUNK", fast)
        z._file = io.BytesIO(data[: last.header_offset + past_header])
        out = Collector(1 << 20, 10.0)
        results.append((z.one_chunk(last.filename, out), out.bytes_left))
    assert results[0] == results[1] == (None, 1 << 20)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_byte_of_a_member_changed_answers_as_the_reference(data):
    good = _all_cases()["good"]
    end = good.find(b"PK\x01\x02")  # the members' headers and data, not the central directory
    changed = bytearray(good)
    for _ in range(data.draw(st.integers(1, 3))):
        changed[data.draw(st.integers(0, end - 1))] = data.draw(st.integers(0, 255))
    results = []
    for fast in (True, False):
        zipread.FAST_ONE_CHUNK = fast
        try:
            results.append(_answers(bytes(changed), None, -1))
        finally:
            zipread.FAST_ONE_CHUNK = True
    assert results[0] == results[1]
