import pytest

from agent.content.document import BODY, FOOTER, HEADER, NAME, PROPERTIES, TITLE, Document, TextPart
from agent.content.markings import StateSecretMarkingDetector, StateSecretMentionDetector, TradeSecretMarkingDetector

FILLER = ["第一章 总则", "本规定适用于全体员工。", "第二条 定义", "第三条 职责", "第四条 范围", "第五条 附则"]


def body_after_first_lines(line: str) -> Document:
    """The line placed after five ordinary non-empty lines, in the middle of the body."""
    return Document("text", (TextPart(BODY, "\n".join([*FILLER, line, "以上。"])),))


def trade(document: Document):
    return TradeSecretMarkingDetector().detect(document)


@pytest.mark.parametrize("where", [NAME, TITLE, PROPERTIES, HEADER, FOOTER])
@pytest.mark.parametrize(
    "text, label",
    [
        ("商业秘密", "商业秘密"),
        ("核心商密", "核心商密"),
        ("普通商密", "普通商密"),
        ("技术秘密 第1页", "技术秘密"),
        ("内部资料 注意保密", "内部资料 注意保密"),
        ("仅供内部使用", "仅供内部使用"),
        ("严禁外传", "严禁外传"),
        ("Strictly  Confidential", "STRICTLY CONFIDENTIAL"),
        ("Q3_confidential_plan.docx", "CONFIDENTIAL"),
        ("INTERNAL ONLY", "INTERNAL ONLY"),
        ("ＣＯＮＦＩＤＥＮＴＩＡＬ", "CONFIDENTIAL"),
    ],
)
def test_marking_in_a_prominent_place_counts(where, text, label):
    found = trade(Document("text", (TextPart(where, text),)))
    assert found is not None
    assert (found.detector, found.count, found.sample) == ("trade_secret_marking", 1, f"{label} @{where}")


@pytest.mark.parametrize(
    "line, count",
    [
        ("【商业秘密】", 1),
        ("【商业秘密·严禁外传】", 2),
        ("[CONFIDENTIAL] 报价单", 1),
        ("（内部资料）", 1),
        ("密级：商业秘密", 1),
        ("密级: 核心商密 保管期限：十年", 1),
        ("商业秘密", 1),
        ("  商业秘密  严禁外传  ", 2),
        ("CONFIDENTIAL - INTERNAL ONLY", 2),
        ("保密文件", 1),
        ("本文件为公司资料【不得外传】，请妥善保管", 1),
    ],
)
def test_marking_in_marking_form_counts_anywhere_in_the_body(line, count):
    found = trade(body_after_first_lines(line))
    assert found is not None and found.count == count
    assert found.sample.endswith("@body:7")


@pytest.mark.parametrize(
    "line",
    [
        "员工应当保守公司的商业秘密，不得泄露",
        "本公司重视保密工作",
        "员工须对秘密信息保密",
        "依据《商业秘密保护管理与服务规范》开展工作",
        "This document explains our confidentiality policy",
        "The design is proprietary to the client and we keep it confidential.",
        "双方协商密切配合",
        "严禁外传的资料应当登记",
    ],
)
def test_term_in_running_prose_in_the_body_does_not_count(line):
    assert trade(body_after_first_lines(line)) is None


def test_a_sentence_in_the_first_lines_is_prose_too():
    text = "\n\n说明\n\n员工应当保守公司的商业秘密，不得泄露\n" + "\n".join(FILLER)
    assert trade(Document("text", (TextPart(BODY, text),))) is None


def test_the_same_sentence_after_the_first_lines_does_not_count():
    text = "\n".join([*FILLER, "员工应当保守公司的商业秘密，不得泄露"])
    assert trade(Document("text", (TextPart(BODY, text),))) is None


def test_count_adds_places_and_sample_names_the_first_prominent_place():
    document = Document(
        "docx",
        (
            TextPart(BODY, "\n".join([*FILLER, "【商业秘密】", "员工应当保守公司的商业秘密"])),
            TextPart(FOOTER, "内部资料"),
            TextPart(HEADER, "核心商密 严禁复制"),
        ),
    )
    found = trade(document)
    assert found is not None and (found.count, found.sample) == (4, "核心商密 @header")


def test_overlapping_terms_count_once():
    found = trade(Document("text", (TextPart(HEADER, "核心商业秘密 STRICTLY CONFIDENTIAL"),)))
    assert found is not None and (found.count, found.sample) == (2, "核心商业秘密 @header")


def state(document: Document):
    return StateSecretMarkingDetector().detect(document)


@pytest.mark.parametrize(
    "text, sample",
    [
        ("机密★5年", "机密★5年"),
        ("秘密★长期", "秘密★长期"),
        ("绝密★2030年12月31日", "绝密★2030年12月31日"),
        ("机密 ★ 10年", "机密★10年"),
        ("绝密★启用前", "绝密★启用前"),
        ("密级：秘密★", "秘密★"),
        ("机密★", "机密★"),
    ],
)
def test_state_secret_mark_counts_in_any_place(text, sample):
    for document, where in [
        (Document("pdf", (TextPart(HEADER, text),)), "header"),
        (body_after_first_lines(text), "body:7"),
    ]:
        found = state(document)
        assert found is not None
        assert (found.detector, found.count, found.sample) == ("state_secret_marking", 1, f"{sample} @{where}")


@pytest.mark.parametrize(
    "text",
    [
        "机密",
        "本项目涉及机密信息，请勿外传",
        "绝密文件",
        "秘密☆",
        "商业秘密★3年",
        "技术秘密★",
        "【商业秘密】",
    ],
)
def test_not_a_state_secret_mark(text):
    assert state(Document("text", (TextPart(HEADER, text), TextPart(BODY, text)))) is None


def test_starred_trade_secret_is_still_a_trade_secret_marking():
    found = trade(Document("text", (TextPart(HEADER, "商业秘密★3年"),)))
    assert found is not None and found.sample == "商业秘密 @header"


def test_every_state_mark_is_counted_and_marks_in_prose_are_mentions():
    document = Document("text", (TextPart(BODY, "机密★5年\n正文\n另见秘密★长期与绝密★"),))
    found = state(document)
    assert found is not None and found.count == 1
    mentioned = StateSecretMentionDetector().detect(document)
    assert mentioned is not None and (mentioned.count, mentioned.sample) == (2, "秘密★长期 @body:3")
