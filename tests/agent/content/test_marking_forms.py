"""Markings by form, not by mention (issue 15 item 2): tables of real marking lines and of prose
about secrecy, where each stands, and the labelled corpus's precision and recall."""

from __future__ import annotations

import pytest

from agent.content.document import BODY, FOOTER, HEADER, NAME, PROPERTIES, TITLE, Document, TextPart
from agent.content.markings import StateSecretMarkingDetector, StateSecretMentionDetector, TradeSecretMarkingDetector
from tests.agent.content.marking_corpus import corpus

MIDDLE = ["产品报价单", "1. 型号 HT-200，单价 1200 元。", "2. 交货期 30 天。", "3. 付款方式：月结 60 天。"]


def trade(*parts: TextPart):
    return TradeSecretMarkingDetector().detect(Document("docx", parts))


def in_the_middle(line: str) -> TextPart:
    return TextPart(BODY, "\n".join([*MIDDLE, line, "以上报价含税。"]))


@pytest.mark.parametrize(
    "line",
    [
        "内部资料 注意保密",
        "【商业秘密】",
        "密级：核心商密",
        "密级:普通商密  保密期限：5年",
        "保密级别：核心商密",
        "CONFIDENTIAL",
        "Strictly Confidential – Page 3 of 12",
        "TRADE SECRET",
        "DO NOT DISTRIBUTE",
        "Classification: Confidential",
        "商业秘密 严禁外传 第2页 共5页",
        "文件编号：QP-7.5-01  密级：商业秘密  V2.1",
        "本页内容【不得外传】，阅后归还",
    ],
)
def test_a_marking_line_counts_anywhere_in_the_body(line):
    assert trade(in_the_middle(line)) is not None


@pytest.mark.parametrize(
    "text, where",
    [
        ("内部资料 注意保密", HEADER),
        ("杭州恒拓精密机械有限公司内部资料", HEADER),
        ("Company Confidential", FOOTER),
        ("ACME Ltd. – Confidential – do not forward", FOOTER),
        ("This document is confidential.", FOOTER),
        ("第 3 页 共 10 页    商业秘密", FOOTER),
        ("HT-200 工艺规程（商业秘密）", TITLE),
        ("Trade Secret of ACME Ltd.", TITLE),
        ("Q3 Pricing – CONFIDENTIAL", TITLE),
        ("Confidential", PROPERTIES),
        ("报价单_商业秘密_2024.xlsx", NAME),
        ("Q3_confidential_plan.docx", NAME),
    ],
)
def test_a_marking_in_a_band_or_title_counts(text, where):
    assert trade(TextPart(where, text), TextPart(BODY, "\n".join(MIDDLE))) is not None


@pytest.mark.parametrize(
    "line",
    [
        "Northwind Components Ltd. | Company Confidential | Page 3 of 9",
        "ACME Industrial Co., Ltd.  Trade Secret",
        "宁波远航电子科技有限公司 内部资料",
        "Confidential – do not forward",
    ],
)
def test_a_short_marking_line_at_the_top_counts_and_in_the_middle_of_prose_also_when_alone(line):
    assert trade(TextPart(BODY, "\n".join([line, *MIDDLE]))) is not None


@pytest.mark.parametrize(
    "text, where",
    [
        ("保密协议", TITLE),
        ("保密协议.docx", NAME),
        ("Confidentiality Agreement", TITLE),
        ("Mutual NDA", TITLE),
        ("商业秘密保护管理制度", TITLE),
        ("商业秘密保护管理制度", HEADER),
        ("Trade Secret Protection Policy", HEADER),
        ("Handling Confidential Information", TITLE),
        ("关于加强商业秘密保护的通知", TITLE),
        ("侵犯商业秘密案判决书.pdf", NAME),
        ("trade_secret_policy.pdf", NAME),
        ("What is a trade secret?", TITLE),
        ("前员工窃取技术秘密被判赔500万元", TITLE),
        ("员工应当保守公司的商业秘密，不得泄露。", PROPERTIES),
    ],
)
def test_a_title_or_band_about_secrecy_is_not_a_marking(text, where):
    assert trade(TextPart(where, text), TextPart(BODY, "\n".join(MIDDLE))) is None


@pytest.mark.parametrize(
    "first_lines",
    [
        ["前员工窃取技术秘密被判赔500万元", "据报道，某公司前员工复制了大量技术秘密。"],
        ["Ex-engineer charged with stealing trade secrets from ACME", "The court found that he took drawings."],
        ["保密协议", "甲方：某某公司", "二、双方应注意保密，未经对方书面同意不得向第三方披露。"],
        ["什么是商业秘密？", "商业秘密的三个构成要件"],
        ["岗位职责：", "1. 负责公司保密工作的日常管理；", "2. 负责公司内部文件的收发与归档；"],
        ["第五条 涉密文件应当在首页标注“内部资料”或“商业秘密”字样，严禁外传。"],
        ["文件应标注“内部资料”字样"],
        ["员工离职时应当交还全部内部资料。"],
        ["How to protect confidential data at work"],
        ["三、商业秘密的范围"],
        ["1. Employees must keep confidential information confidential."],
    ],
)
def test_prose_about_secrecy_in_the_first_lines_is_not_a_marking(first_lines):
    assert trade(TextPart(BODY, "\n".join([*first_lines, *MIDDLE]))) is None


def test_a_pdf_page_header_counts_on_every_page_and_a_line_in_the_middle_of_a_page_does_not():
    page = ["ACME Ltd.  Confidential", "Unit price USD 1200", "Delivery 30 days", "Payment 60 days", "Terms apply"]
    middle = "Quotation ACME Confidential revision"  # not alone on its line, not at a page edge
    parts = [TextPart(BODY, line, page_line=n) for _ in range(3) for n, line in enumerate(page, 1)]
    found = trade(*parts)
    assert found is not None and found.count == 3
    lines = [*MIDDLE, *MIDDLE, middle, *MIDDLE, *MIDDLE]
    assert trade(*[TextPart(BODY, line, page_line=n) for n, line in enumerate(lines, 1)]) is None


def state(document: Document):
    return StateSecretMarkingDetector().detect(document), StateSecretMentionDetector().detect(document)


@pytest.mark.parametrize(
    "line, sample",
    [
        ("机密★5年", "机密★5年"),
        ("★机密 5 年", "机密★5年"),
        ("★ 绝密 启用前", "绝密★启用前"),
        ("秘 密 ★ 长期", "秘密★长期"),
        ("000123  机密★1年  特急", "机密★1年"),
        ("密级：机密★10年", "机密★10年"),
        ("【秘密★】", "秘密★"),
    ],
)
def test_state_mark_in_any_order_counts_alone_on_its_line(line, sample):
    marked, mentioned = state(Document("pdf", (in_the_middle(line),)))
    assert marked is not None and marked.sample == f"{sample} @body:5"
    assert mentioned is None


@pytest.mark.parametrize(
    "line",
    [
        "文件应标注‘机密★’字样",
        "培训要点：机密★级文件不得在互联网计算机上处理。",
        "国家秘密的标志为“★”，如“绝密★30年”。",
        "企业的商业秘密不得标注“秘密★”等国家秘密标志。",
    ],
)
def test_a_state_mark_in_a_sentence_is_a_mention_not_a_marking(line):
    for document in (Document("pptx", (in_the_middle(line),)), Document("pptx", (TextPart(BODY, line),))):
        marked, mentioned = state(document)
        assert marked is None and mentioned is not None


@pytest.mark.parametrize("line", ["★机密文件管理要点", "商业秘密★3年", "技术秘密★", "机密 ☆", "本项目涉及机密信息"])
def test_not_a_state_mark_nor_a_mention(line):
    assert state(Document("text", (TextPart(HEADER, line), in_the_middle(line)))) == (None, None)


def _precision_recall(detector, expected) -> tuple[float, float]:
    rows = [(expected(item), detector.detect(item.document) is not None) for item in corpus()]
    tp = sum(1 for e, g in rows if e and g)
    fp = sum(1 for e, g in rows if g and not e)
    fn = sum(1 for e, g in rows if e and not g)
    return tp / (tp + fp), tp / (tp + fn)


@pytest.mark.parametrize(
    "detector, expected",
    [
        (TradeSecretMarkingDetector(), lambda item: item.marked),
        (StateSecretMarkingDetector(), lambda item: item.state == "mark"),
        (StateSecretMentionDetector(), lambda item: item.state == "mention"),
    ],
)
def test_labelled_corpus_precision_and_recall_are_at_least_95_percent(detector, expected):
    precision, recall = _precision_recall(detector, expected)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
