"""Files no parser reads anything from are answered without an inspection worker, and the answer
is the one a worker gives: the same type (none), the same detections of the name. A name no
detector can find anything in is answered without running them (may_detect): the same answer as
the detectors give, over random names built of identifiers, near-identifiers and marking terms."""

from __future__ import annotations

import codecs
import io
import os
import random
import time

import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import opaque
from agent.content import detectors, filetype, marking_terms
from agent.content.inspect import Inspection, inspect_source
from agent.hashing import Hasher
from agent.inspector import InProcessInspector, open_regular
from agent.lanes import Job, Lanes
from agent.opaque import _TYPED_STARTS, HEAD_BYTES, is_opaque, may_detect, name_only, name_only_reference
from rules.events import Detection
from tests.agent.content.test_identifier_vector import _pieces as _identifier_pieces

NAMES = [
    "IMG_0001.jpg",
    "pump.docx",  # a document's name on opaque bytes: no type, so no mismatch either
    "绝密★10年 泵体图纸.dwg",
    "商业秘密★5年-报价.bin",
    "CONFIDENTIAL - trade secret.dat",
    "110101199003074477-张三.bin",  # an identifier in the name
    "13800138000.zip",
    "no extension",
    "\udcff\udcfe-odd bytes.bin",  # a name that is not UTF-8 (os.fsdecode's escapes)
]


def _random_binary(seed: int, size: int) -> bytes:
    data = bytearray(random.Random(seed).randbytes(size))
    if size:
        data[size // 2] = 0  # random bytes of any size hold a NUL: these surely do
    return bytes(data)


@pytest.mark.parametrize("name", NAMES)
def test_an_opaque_file_gets_what_a_worker_would_answer(tmp_path, name):
    path = tmp_path / "f"
    path.write_bytes(_random_binary(len(name), 20_000))
    assert is_opaque(path.read_bytes()[:HEAD_BYTES])
    fd, _ = open_regular(str(path))
    try:
        assert name_only(name) == InProcessInspector().inspect(fd, name)
    finally:
        os.close(fd)


def test_a_marking_in_an_opaque_files_name_is_still_found():
    assert {d.detector for d in name_only("绝密★10年 泵体图纸.dwg").detections} == {"state_secret_marking"}
    assert {d.detector for d in name_only("商业秘密-报价.bin").detections} == {"trade_secret_marking"}


def test_an_empty_file_is_opaque():
    assert is_opaque(b"")
    assert name_only("x.docx") == inspect_source(io.BytesIO(b""), "x.docx")


@pytest.mark.parametrize(
    "head",
    [
        b"plain text, no NUL at all\n" * 10,
        "中文文本，没有零字节".encode("gb18030") * 10,
        codecs.BOM_UTF16_LE + "UTF-16 text has NULs".encode("utf-16-le"),
        codecs.BOM_UTF16_BE + "UTF-16 text has NULs".encode("utf-16-be"),
        b"\0\0%PDF-1.7\n" + b"\0" * 100,  # PDF after two bytes (a CRLF) is looked for
        b"\0" * 257 + b"ustar\0" + b"\0" * 100,  # tar
    ]
    + [start + b"\0" * 600 for start in _TYPED_STARTS],
)
def test_anything_a_type_or_text_could_be_read_from_goes_to_a_worker(head):
    assert not is_opaque(head)


def test_opaque_means_no_type_for_random_heads():
    """Random heads, and random heads after each known start: whenever is_opaque says so, the
    type detection finds no type either."""
    rng = random.Random(7)
    heads = [rng.randbytes(rng.choice([1, 7, 100, 4096, HEAD_BYTES])) for _ in range(300)]
    heads += [start + rng.randbytes(500) for start in _TYPED_STARTS for _ in range(3)]
    seen_opaque = 0
    for head in heads:
        if is_opaque(head):
            seen_opaque += 1
            assert filetype.detect_file(io.BytesIO(head)) is None
    assert seen_opaque > 100  # the short ones often hold no NUL: they might be text


class _CountingInspector(InProcessInspector):
    calls: list[str] = []

    def inspect(self, fd, name):
        self.calls.append(name)
        return super().inspect(fd, name)


def test_a_lane_sends_only_files_with_something_to_parse_to_its_worker(tmp_path):
    _CountingInspector.calls = []
    photo, note = tmp_path / "IMG_0001.jpg", tmp_path / "note.txt"
    photo.write_bytes(_random_binary(1, 50_000))
    note.write_bytes("机密 报价单\n".encode() * 100)
    lanes = Lanes(Hasher(), _CountingInspector)
    lanes.start()
    try:
        for path in (photo, note):
            fd, st = open_regular(str(path))
            assert lanes.submit(Job(str(path), fd, st))
        found, deadline = [], time.monotonic() + 10
        while len(found) < 2 and time.monotonic() < deadline:
            found += lanes.done()
            time.sleep(0.01)
    finally:
        lanes.stop()
    by_name = {d.job.path.rsplit("/", 1)[1]: d for d in found}
    assert _CountingInspector.calls == ["note.txt"]
    assert by_name["IMG_0001.jpg"].inspection == name_only("IMG_0001.jpg")
    assert by_name["note.txt"].inspection.file_type == "text"


# --- the name shortcut (may_detect): the same answers as the detectors --------------------------

MARKING_PIECES = [
    *marking_terms.CJK_TERMS[:3], "商业秘密", "商密", "协商密切", "内部资料", "内部资料 注意保密", "仅供内部使用", "严禁外传", "严禁复制",
    "保密文件", "机密★", "★机密", "绝密★10年", "秘密 ★", "商业秘密★5年", "★", "☆", "【", "】", "密级：核心", "confidential",
    "CONFIDENTIAL", "Strictly  Confidential", "internal use only", "For Internal Use Only", "internal only", "proprietary",
    "trade secrets", "Trade Secret", "do not distribute", "trade", "internals", "distributed", "ｃｏｎｆｉｄｅｎｔｉａｌ",
    "ＴＲＡＤＥ ＳＥＣＲＥＴ", "\u017fecret", "con\u017fidential", "propriEtary", "\u212aeep", "co\u212ffidential",
    "\u0130nternal", "手机", "电话", "mobile", "tel", "卡号", "card", "-", "_", ".", " ", "报价", "图纸",
]  # fmt: skip


@st.composite
def file_names(draw):
    rng = random.Random(draw(st.integers(0, 10**6)))
    pieces = [*_identifier_pieces(rng), *MARKING_PIECES]
    contexts = ["手机", "电话 ", "tel:", "卡号", "银行卡", "card "]
    chosen = st.one_of(
        st.sampled_from(pieces), st.sampled_from(pieces), st.sampled_from(contexts), st.text(max_size=3),
        st.text(alphabet="0123456789 -Xx", max_size=12),
    )  # fmt: skip
    return draw(st.lists(chosen, max_size=8).map("".join))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_names())
def test_the_name_shortcut_answers_what_the_detectors_answer(name):
    assert name_only(name) == name_only_reference(name)


def test_the_name_shortcut_is_taken_and_findings_are_not_lost():
    """Over seeded names: the shortcut answers many of them, the detectors find something in many
    others, and the two always agree (so the test above is not vacuous)."""
    rng = random.Random(11)
    skipped = found = 0
    for i in range(3000):
        pieces = [*_identifier_pieces(rng), *MARKING_PIECES, "IMG_", "DSC", f"{i:06d}", "20261206", "报告", "ab"]
        name = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4))) + rng.choice([".bin", ".jpg", ""])
        reference = name_only_reference(name)
        assert name_only(name) == reference, name
        skipped += not may_detect(name)
        found += bool(reference.detections)
    assert skipped > 500 and found > 500


@pytest.mark.parametrize(
    "name",
    ["file-000123.bin", "IMG_20261206_123456.jpg", "报价单 v2.pdf", "ｆｉｌｅ１２３.bin", "\udcff\udcfe-odd bytes.bin"],
)
def test_names_with_nothing_to_find_are_answered_by_the_shortcut(name):
    assert not may_detect(name)
    assert name_only(name) == name_only_reference(name) == Inspection(None, None, ())


def test_re2_takes_only_two_characters_outside_ascii_for_an_ascii_letter():
    """(?i) in the English terms: only ſ and the Kelvin sign match a letter, both sent to the
    detectors (and NFKC makes letters of them before the detectors read the name)."""
    letter = re2.compile("(?i:[a-z])")
    found = {chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000 and letter.fullmatch(chr(c))}
    assert found == {"\u017f", "\u212a"}
    assert found <= opaque._MARK_CHARS


def test_every_term_holds_a_word_or_character_the_shortcut_looks_for():
    for term in marking_terms.CJK_TERMS:
        assert not opaque._MARK_CHARS.isdisjoint(term), term
    for term in marking_terms.EN_TERMS:
        assert any(word in term for word in opaque._MARK_WORDS), term
    levels = marking_terms.STATE_LEVEL.removeprefix("(").removesuffix(")").split("|")
    assert len(levels) == 3 and all(not opaque._MARK_CHARS.isdisjoint(level) for level in levels)
    assert marking_terms.STATE_RE.pattern.count(marking_terms.STATE_LEVEL) == 2  # each form holds a level


def test_the_shortcut_was_written_for_the_detectors_in_force():
    """When this fails, a detector or a pattern changed: review may_detect against it, then update
    opaque._PATTERNS_KNOWN and _DETECTORS_KNOWN (until then every name goes to the detectors)."""
    assert opaque._written_for_these_detectors()


def test_a_detector_the_shortcut_does_not_know_sends_every_name_to_the_detectors(monkeypatch):
    class EveryName:
        id = "every_name"

        def detect(self, document):
            return Detection(self.id, 1, document.parts[0].text)

    monkeypatch.setitem(detectors.DETECTORS, "every_name", EveryName)
    assert may_detect("file-000123.bin")
    assert name_only("file-000123.bin").detections == (Detection("every_name", 1, "file-000123.bin"),)


def test_the_reference_switch_runs_the_detectors(monkeypatch):
    calls = []
    monkeypatch.setattr(opaque, "detect", lambda document: calls.append(document) or ())
    monkeypatch.setattr(opaque, "FAST_NAMES", False)
    name_only("file-000123.bin")
    assert len(calls) == 1
