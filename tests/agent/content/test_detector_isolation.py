"""One detector failing loses that detector's answer only, with the reason, never the whole inspection.

Before: the first exception out of any detector left detect() with nothing, and inspection
turned the whole file into one parse_error (no markings, identifiers, members or fingerprints).
"""

import pytest
from stdnum.cn import ric

from agent.content import detectors
from agent.content.detectors import DETECTORS, FAILED, detect
from agent.content.document import BODY, HEADER, Document, TextPart
from agent.content.inspect import inspect_file
from rules.events import Detection

RID = "33010619900307123" + ric.calc_check_digit("330106199003071230")
SECRET = "客户 13812345678 contents that must never reach an event"
DOCUMENT = Document("text", (TextPart(HEADER, "商业秘密"), TextPart(BODY, f"身份证 {RID}\n{SECRET}")))


class RaisingDetector:
    id = "cn_mobile"

    def detect(self, document: Document) -> Detection | None:
        raise ValueError(f"cannot read {document.text_of(BODY)}")  # the message quotes content


class SecondRaisingDetector:
    id = "bank_card"

    def detect(self, document: Document) -> Detection | None:
        raise RecursionError("deep")


def _registered_with(**swapped: type) -> list:
    return [swapped.get(key, cls)() for key, cls in DETECTORS.items()]


def test_a_raising_detector_loses_its_answer_only_and_says_which_and_why():
    found = detect(DOCUMENT, _registered_with(cn_mobile=RaisingDetector))

    assert {d.detector for d in found} == {"cn_resident_id", "trade_secret_marking", FAILED}
    failed = next(d for d in found if d.detector == FAILED)
    assert (failed.count, failed.sample) == (1, "cn_mobile: ValueError")
    assert [d.detector for d in found] == sorted(d.detector for d in found)


def test_every_failed_detector_is_counted_and_named_but_no_content_is_kept():
    found = detect(DOCUMENT, _registered_with(cn_mobile=RaisingDetector, bank_card=SecondRaisingDetector))

    failed = next(d for d in found if d.detector == FAILED)
    assert failed.count == 2
    assert failed.sample == "bank_card: RecursionError; cn_mobile: ValueError"
    assert not any(SECRET in d.sample or RID in d.sample for d in found)


def test_no_failure_means_no_failed_detection():
    assert FAILED not in {d.detector for d in detect(DOCUMENT)}


def test_inspection_keeps_markings_when_a_registered_detector_raises(tmp_path, monkeypatch):
    path = tmp_path / "report.txt"
    path.write_text(f"商业秘密\n身份证 {RID}\n", encoding="utf-8")
    monkeypatch.setitem(detectors.DETECTORS, "cn_mobile", RaisingDetector)

    found = {d.detector: d for d in inspect_file(str(path)).detections}

    assert {"trade_secret_marking", "cn_resident_id", FAILED} <= set(found)
    assert found[FAILED].sample == "cn_mobile: ValueError"
    assert "parse_error" not in found


@pytest.mark.parametrize("error", [ValueError, MemoryError, UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates")])
def test_any_exception_type_is_contained(error):
    class Raising:
        id = "odd"

        def detect(self, document):
            raise error

    found = detect(DOCUMENT, [Raising()])
    assert [d.detector for d in found] == [FAILED]
    assert found[0].sample.startswith("odd: ")
