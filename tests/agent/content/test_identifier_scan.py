"""The identifier detectors share one scan per document, and the digit-count prefilter never
hides an identifier: the results are those of a scan of every part by every detector."""

from __future__ import annotations

import gc
import random
from datetime import date

import pytest
from stdnum import luhn
from stdnum.cn import ric, uscc

from agent.content import identifiers
from agent.content.document import BODY, FOOTER, NAME, Document, TextPart
from agent.content.identifiers import BankCardDetector, MobileDetector, ResidentIdDetector, UsccDetector
from agent.content.ids.columns import ColumnContext

TODAY = date(2026, 11, 26)
DETECTORS = (BankCardDetector, MobileDetector, ResidentIdDetector, UsccDetector)


def _random_part(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randrange(1, 12)):
        kind = rng.randrange(8)
        if kind == 0:
            first = "1101051949123100" + str(rng.randrange(10))
            pieces.append(first + ric.calc_check_digit(first + "0"))
        elif kind == 1:
            digits = "6222" + "".join(rng.choice("0123456789") for _ in range(11))
            card = digits + luhn.calc_check_digit(digits)
            pieces.append(" ".join(card[i : i + 4] for i in range(0, 16, 4)) if rng.random() < 0.5 else card)
        elif kind == 2:
            pieces.append(
                rng.choice(["手机", "电话 ", "tel:", ""])
                + "1"
                + rng.choice("3456789")
                + "".join(rng.choice("0123456789") for _ in range(9))
            )
        elif kind == 3:
            first = "91330106" + "".join(rng.choice("0123456789") for _ in range(9))
            pieces.append(first + uscc.calc_check_digit(first + "0"))
        elif kind == 4:
            pieces.append("".join(rng.choice("0123456789 -xX") for _ in range(rng.randrange(1, 30))))
        elif kind == 5:
            pieces.append("１３８ １２３４ ５６７８ 联系人")  # full-width: digits only after NFKC
        else:
            pieces.append(rng.choice(["客户名单", "pump v2", "年度预算 2026", "a", "\n", "\t", ","]))
    return rng.choice([" ", "\n", "，", ""]).join(pieces)


def _unshared(document: Document) -> dict:
    """What each detector finds when every part is scanned by it alone (no prefilter, no sharing)."""
    found = {}
    texts = [identifiers.unicodedata.normalize("NFKC", part.text) for part in document.parts]
    columns = ColumnContext(
        [(p.where, t, p.cell) for p, t in zip(document.parts, texts, strict=True)]
    )  # a document's headers
    for cls in DETECTORS:
        detector = cls(lambda: TODAY)
        count, sample = 0, ""
        for index, text in enumerate(texts):
            scanned = identifiers._Scanned(text, tuple(identifiers.scan_digits(text, TODAY)), index=index)
            scan = identifiers._Scan([scanned], columns)
            values = (
                list(identifiers.scan_uscc(text, TODAY))
                if cls is UsccDetector
                else list(detector.found_in(scan, scanned, TODAY))
            )
            sample = sample or (identifiers.mask(cls.id, values[0]) if values else "")
            count += len(values)
        found[cls.id] = (count, sample) if count else None
    return found


@pytest.mark.parametrize("seed", range(40))
def test_shared_scan_and_prefilter_find_what_separate_scans_find(seed):
    rng = random.Random(seed)
    parts = [TextPart(NAME, _random_part(rng)[:60])] + [
        TextPart(rng.choice([BODY, FOOTER]), _random_part(rng)) for _ in range(rng.randrange(1, 5))
    ]
    document = Document("text", tuple(parts))
    shared = {}
    for cls in DETECTORS:
        d = cls(lambda: TODAY).detect(document)
        shared[cls.id] = (d.count, d.sample) if d else None
    assert shared == _unshared(document)


def test_one_scan_per_document_for_all_detectors(monkeypatch):
    calls = []
    real = identifiers._scan_table
    monkeypatch.setattr(identifiers, "NUMPY_SCAN_CHARS", 0)  # this short document by numpy too
    monkeypatch.setattr(
        identifiers, "_scan_table", lambda texts, joined, *a: calls.append(joined) or real(texts, joined, *a)
    )
    card = "6222021234567890"
    card = card[:-1] + luhn.calc_check_digit(card[:-1])
    document = Document("text", (TextPart(NAME, "客户.csv"), TextPart(BODY, f"卡号 {card} 手机 13812345678")))
    found = [cls(lambda: TODAY).detect(document) for cls in DETECTORS]
    assert [d.detector for d in found if d] == ["bank_card", "cn_mobile"]
    assert calls == ["客户.csv\n" + document.parts[1].text], "the parts are scanned once, joined, for all detectors"
    del document, found
    gc.collect()
    assert getattr(identifiers._cache, "entry", None) is None, "the scan goes with its document"


def test_short_texts_skip_numpy_with_the_same_detections(monkeypatch):
    """A file's name or a short note is scanned by _scan_whole (numpy's fixed cost per call was
    ten times the whole scan of a name: every file of an egress burst pays it); the detections are
    those of the numpy scan."""
    calls = []
    real = identifiers._scan_table
    monkeypatch.setattr(
        identifiers, "_scan_table", lambda texts, joined, *a: calls.append(joined) or real(texts, joined, *a)
    )
    rng = random.Random(11)
    for _ in range(150):
        parts = [TextPart(NAME, _random_part(rng)[:60])] + [
            TextPart(BODY, _random_part(rng)[: rng.randrange(0, 2000)]) for _ in range(rng.randrange(0, 3))
        ]
        document = Document("text", tuple(parts))
        if len("\n".join(p.text for p in parts)) > identifiers.NUMPY_SCAN_CHARS:
            continue
        short = [cls(lambda: TODAY).detect(document) for cls in DETECTORS]
        assert not calls, "a short text goes to the pure-Python scan"
        monkeypatch.setattr(identifiers, "NUMPY_SCAN_CHARS", 0)
        by_numpy = [cls(lambda: TODAY).detect(Document("text", tuple(parts))) for cls in DETECTORS]
        monkeypatch.setattr(identifiers, "NUMPY_SCAN_CHARS", 4096)
        assert calls, "and the numpy scan when told"
        calls.clear()
        assert [(d.detector, d.count, d.sample) if d else None for d in short] == [
            (d.detector, d.count, d.sample) if d else None for d in by_numpy
        ]
