import dataclasses

import pytest
from stdnum import luhn
from stdnum.cn import ric

from agent.content.detectors import DETECTORS, detect
from agent.content.document import BODY, HEADER, Document, TextPart

PACK_IDS = {
    "trade_secret_marking",
    "state_secret_marking",
    "state_secret_mention",  # MW-STATE-SECRET-MENTION, proposed to the lead for classified.yaml
    "cn_resident_id",
    "bank_card",
    "cn_mobile",
    "cn_uscc",
}


def test_registry_holds_every_id_the_packs_use_under_its_own_id():
    assert set(DETECTORS) == PACK_IDS
    assert all(cls().id == key for key, cls in DETECTORS.items())


def test_detect_returns_only_non_zero_detections_sorted_by_id():
    rid = "33010619900307123"
    rid += ric.calc_check_digit(rid + "0")
    card = "622202123456789"
    card += luhn.calc_check_digit(card)
    document = Document(
        "docx",
        (TextPart(HEADER, "商业秘密"), TextPart(BODY, f"机密★5年\n身份证 {rid}\n卡号 {card}\n手机 13812345678")),
    )
    found = detect(document)
    assert [d.detector for d in found] == [
        "bank_card",
        "cn_mobile",
        "cn_resident_id",
        "state_secret_marking",
        "trade_secret_marking",
    ]
    assert all(d.count == 1 for d in found)
    flat = " ".join(str(v) for d in found for v in dataclasses.astuple(d))
    assert rid not in flat and card not in flat and "13812345678" not in flat


def test_nothing_found_is_an_empty_tuple():
    assert detect(Document("text", (TextPart(BODY, "本公司重视保密工作。电话会议改到下午。"),))) == ()
    assert detect(Document(None)) == ()


def adversarial_text(size: int) -> str:
    """Long digit runs, near-miss groups, partial markings and context words, repeated to size."""
    chunks = [
        "1" * 200_000,
        "1 " * 100_000,
        "1-2 " * 50_000,
        "6222 0212 3456 " * 20_000,
        "手机1381234567 " * 20_000,
        "11010519491231002" + "Xa" * 1000,
        "商业" * 50_000 + "\n",
        "【商业秘密" * 20_000 + "\n",
        "机密 ★ " * 20_000,
        "CONFIDENTIA" * 20_000,
        "9" * 17 + "," * 10_000,
    ]
    text = "".join(chunks)
    return (text * (size // len(text) + 1))[:size]


@pytest.mark.timeout(120)
def test_five_megabytes_of_adversarial_text_completes():
    text = adversarial_text(5 * 1024 * 1024)
    found = detect(Document("text", (TextPart(BODY, text), TextPart(HEADER, text[:100_000]))))
    assert all(d.count >= 1 for d in found)
