"""A labelled corpus of documents for the marking detectors: marked ones as firms mark them, and
documents about secrecy (news, policies, NDAs, training, job descriptions) that are not marked.

Generated from pools with a seeded random, so every document differs in its firm, genre, wording,
where the marking stands and how extraction laid it out, and a run is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from agent.content.document import BODY, FOOTER, HEADER, NAME, PROPERTIES, TITLE, Document, TextPart

FIRMS_CN = [
    "杭州恒拓精密机械有限公司",
    "宁波远航电子科技有限公司",
    "苏州华晟新材料股份有限公司",
    "深圳启明智能装备有限公司",
    "无锡联创汽车零部件有限公司",
    "佛山德瑞电器有限公司",
]
FIRMS_EN = [
    "ACME Industrial Co., Ltd.",
    "Hengtuo Precision",
    "Northwind Components Ltd.",
    "Sino-Tech Motors Inc.",
    "Bluefield Materials GmbH",
    "Orion Automation",
]
DEPTS = ["技术部", "研发中心", "销售部", "工艺部", "质量部", "采购部"]

BUSINESS_CN = [
    "1. 产品型号：HT-{n}，额定功率 {k} kW，防护等级 IP65。",
    "2. 报价有效期为 30 天，单价含 13% 增值税，运费由买方承担。",
    "3. 主轴转速 {n} rpm，定位精度 ±0.005 mm，重复定位精度 ±0.003 mm。",
    "客户名称：{firm}    联系人：王经理",
    "热处理工艺：淬火温度 {n} ℃，保温 {k} 小时，回火两次。",
    "序号  物料编码  名称  数量  单价",
    "{k}  M-{n}  深沟球轴承 6205  200  12.50",
    "本季度华东区销售额 {n} 万元，同比增长 {k}%。",
    "供应商评审结论：合格，下次复审 2025 年 6 月。",
    "附件：装配图 DWG-{n} 共 {k} 张。",
]
BUSINESS_EN = [
    "Unit price: USD {n}.00 per set, EXW Ningbo, valid for 30 days.",
    "Spindle speed {n} rpm; positioning accuracy ±0.005 mm.",
    "Customer: {firm}. Contact: Ms. Li, purchasing.",
    "Q{k} revenue reached {n} thousand USD, up {k}% year on year.",
    "Heat treatment: quench at {n} °C, hold {k} h, temper twice.",
    "Bill of materials rev {k}: 42 items, see sheet 2.",
]

# lines as firms put them on a marked document
MARK_LINES_CN = [
    "内部资料 注意保密",
    "内部资料，注意保密",
    "【商业秘密】",
    "【商业秘密·严禁外传】",
    "密级：核心商密",
    "密级: 普通商密  保密期限：5年",
    "商业秘密 严禁外传",
    "技术秘密 严禁复制",
    "公司秘密",
    "保密文件 请勿外传",
    "仅供内部使用",
    "（内部文件）",
    "文件密级：商业秘密    编号：HT-QP-{n}",
    "保密级别：核心商密",
    "不得外传",
    "〔内部资料〕",
]
MARK_LINES_EN = [
    "CONFIDENTIAL",
    "STRICTLY CONFIDENTIAL",
    "Company Confidential",
    "TRADE SECRET",
    "DO NOT DISTRIBUTE",
    "Confidential – do not forward",
    "Proprietary and Confidential",
    "INTERNAL USE ONLY",
    "For Internal Use Only",
    "Classification: Confidential",
    "[CONFIDENTIAL]",
    "Confidential - Internal Only",
]
ORG_MARK_LINES = [
    "{firm} 内部资料",
    "{firm}  商业秘密",
    "{dept} 内部文件 第{k}页",
    "{efirm} Confidential",
    "Trade Secret of {efirm}",
    "{efirm} – Proprietary",
    "{efirm} | Company Confidential | Page {k} of 9",
    "第 {k} 页 共 9 页    内部资料",
    "© 2024 {efirm}. Confidential.",
]
TITLES_MARKED = [
    "{dept}报价单（内部资料）",
    "HT-{n} 工艺规程【商业秘密】",
    "Q{k} Pricing – CONFIDENTIAL",
    "Product Roadmap (Internal Only)",
]
NAMES_MARKED = [
    "报价单_商业秘密_{n}.xlsx",
    "ACME_CONFIDENTIAL_roadmap_{n}.pptx",
    "工艺规程(内部资料)-{n}.docx",
    "[内部资料]供应商名录.xlsx",
    "技术秘密-热处理工艺{n}.docx",
]

# documents about secrecy: none of these is marked
NEWS_TITLES = [
    "前员工窃取技术秘密被判赔{n}万元",
    "法院：侵犯商业秘密罪成立，{firm}获赔{k}百万",
    "{firm}诉前高管侵犯商业秘密案一审宣判",
    "商业秘密保护典型案例发布",
    "浅谈企业商业秘密的认定",
    "Ex-engineer charged with stealing trade secrets from {efirm}",
    "Jury awards ${k}M in trade secret case against {efirm}",
    "Court rules former employee misappropriated trade secrets",
]
NEWS_BODY = [
    "据报道，{firm}前员工在离职前复制了大量技术秘密，法院判决其赔偿经济损失{n}万元。",
    "法院审理认为，被告以不正当手段获取原告的商业秘密，构成侵犯商业秘密罪。",
    "专家提醒，企业应当建立商业秘密保护制度，对内部资料进行分级管理。",
    "本案中，涉案图纸被认定为原告的技术秘密。",
    "The court found that the defendant took confidential drawings and used them at a competitor.",
    "Prosecutors said the engineer downloaded proprietary source code before resigning.",
    "The company said it takes the protection of its trade secrets seriously.",
]
POLICY_TITLES = [
    "{firm}商业秘密保护管理制度",
    "保密管理办法",
    "{firm}保密制度（{k}版）",
    "内部资料管理规定",
    "Trade Secret Protection Policy",
    "Handling Confidential Information",
]
POLICY_LINES = [
    "第一条 为保护公司商业秘密，维护公司合法权益，制定本制度。",
    "第二条 本制度所称商业秘密，是指不为公众所知悉、具有商业价值并经公司采取保密措施的技术信息和经营信息。",
    "第三条 商业秘密分为核心商密和普通商密两级。",
    "第五条 涉密文件应当在首页标注“内部资料”或“商业秘密”字样，严禁外传。",
    "第六条 员工应当注意保密，不得向第三方披露公司技术秘密。",
    "三、商业秘密的范围",
    "（二）内部文件的收发与登记",
    "1. Employees must keep confidential information confidential.",
    "2. Documents marked as proprietary must not leave the company network.",
    "Section 3. Trade secrets include formulas, drawings and customer lists.",
]
NDA_TITLES = [
    "保密协议",
    "保密协议书",
    "员工保密协议",
    "技术秘密保护协议",
    "Mutual Non-Disclosure Agreement",
    "Confidentiality Agreement",
    "NDA",
]
NDA_LINES = [
    "甲方：{firm}",
    "乙方：{firm}",
    "鉴于双方在合作中可能接触对方的商业秘密，经友好协商，达成如下协议：",
    "一、本协议所称商业秘密包括技术信息和经营信息。",
    "二、双方应注意保密，未经对方书面同意不得向第三方披露。",
    "三、保密期限为合作结束后五年。",
    '1. "Confidential Information" means any information disclosed by either party.',
    "2. The Receiving Party shall keep the Confidential Information confidential.",
    "3. This Agreement does not grant any license under any trade secret.",
]
TRAINING_LINES = [
    "商业秘密保护培训",
    "什么是商业秘密？",
    "商业秘密的三个构成要件",
    "案例：某公司技术秘密泄露",
    "文件应标注“内部资料”字样",
    "员工离职时应当交还全部内部资料。",
    "Why trade secrets matter",
    "How to protect confidential data at work",
]
JD_LINES = [
    "岗位名称：行政专员",
    "岗位职责：",
    "1. 负责公司保密工作的日常管理；",
    "2. 负责公司内部文件的收发与归档；",
    "3. 熟悉商业秘密保护相关法律法规；",
    "任职要求：本科以上学历，两年以上行政工作经验。",
    "Responsibilities: manage the handling of confidential documents and NDAs.",
]

# state-secret marks as official documents carry them, and extraction renders them
STATE_LINES = [
    "机密★5年",
    "★机密 5 年",
    "绝密★启用前",
    "秘密★长期",
    "密级：机密★10年",
    "000{k}{k}  机密★1年  特急",
    "秘 密★",
    "★秘密",
]
STATE_MENTIONS = [
    "文件应标注‘机密★’或“秘密★长期”字样",
    "国家秘密的标志为“★”，如“绝密★30年”。",
    "培训要点：机密★级文件不得在互联网计算机上处理。",
    "企业的商业秘密不得标注“秘密★”等国家秘密标志。",
]


@dataclass(frozen=True)
class Labelled:
    kind: str  # what the document is, for a report of errors
    document: Document
    marked: bool  # trade_secret_marking expected
    state: str = ""  # "mark", "mention" or "" for state_secret_marking / state_secret_mention expected


def _fill(rng: random.Random, line: str) -> str:
    return line.format(
        n=rng.randint(100, 9999),
        k=rng.randint(1, 9),
        firm=rng.choice(FIRMS_CN),
        efirm=rng.choice(FIRMS_EN),
        dept=rng.choice(DEPTS),
    )


def _lines(rng: random.Random, pool: list[str], count: int) -> list[str]:
    return [_fill(rng, rng.choice(pool)) for _ in range(count)]


def _business(rng: random.Random, count: int) -> list[str]:
    pool = BUSINESS_EN if rng.random() < 0.3 else BUSINESS_CN
    return _lines(rng, pool, count)


def _marked(rng: random.Random, i: int) -> Labelled:
    mark = _fill(rng, rng.choice(MARK_LINES_CN + MARK_LINES_EN + ORG_MARK_LINES))
    body = _business(rng, rng.randint(6, 20))
    title = _fill(rng, rng.choice(["{dept}产品报价单", "HT-{n} 工艺规程", "Q{k} Sales Forecast", "{firm}供应商名录"]))
    name = TextPart(NAME, f"doc_{i}.docx")
    way = i % 8
    if way == 0:  # docx header
        return Labelled(
            "header", Document("docx", (name, TextPart(HEADER, mark), TextPart(BODY, "\n".join([title, *body])))), True
        )
    if way == 1:  # docx footer
        return Labelled(
            "footer", Document("docx", (name, TextPart(FOOTER, mark), TextPart(BODY, "\n".join([title, *body])))), True
        )
    if way == 2:  # first line of the body
        return Labelled("first line", Document("docx", (name, TextPart(BODY, "\n".join([mark, title, *body])))), True)
    if way == 3:  # PDF: a page header (or footer) on every page, as pypdf puts it in the text
        parts = [name]
        for _ in range(rng.randint(1, 3)):
            page = (
                [mark, *_business(rng, rng.randint(4, 9))]
                if rng.random() < 0.5
                else [*_business(rng, rng.randint(4, 9)), mark]
            )
            parts += [TextPart(BODY, line, page_line=n) for n, line in enumerate(page, start=1)]
        return Labelled("pdf page edge", Document("pdf", tuple(parts)), True)
    if way == 4:  # title property
        marked_title = _fill(rng, rng.choice(TITLES_MARKED))
        return Labelled(
            "title", Document("docx", (name, TextPart(TITLE, marked_title), TextPart(BODY, "\n".join(body)))), True
        )
    if way == 5:  # file name
        return Labelled(
            "name",
            Document("xlsx", (TextPart(NAME, _fill(rng, rng.choice(NAMES_MARKED))), TextPart(BODY, "\n".join(body)))),
            True,
        )
    if way == 6:  # a marking line in the middle: a document-control block, a bracketed ban in a sentence
        middle = rng.choice(
            [
                "密级：核心商密    保密期限：长期",
                "【商业秘密】",
                "CONFIDENTIAL",
                "本页内容【不得外传】，阅后归还",
                f"文件编号：QP-{rng.randint(10, 99)}   密级：普通商密",
            ]
        )
        cut = rng.randint(3, len(body))
        return Labelled(
            "body form",
            Document("docx", (name, TextPart(BODY, "\n".join([title, *body[:cut], middle, *body[cut:]])))),
            True,
        )
    # properties (a custom Classification property, as labelling tools write it)
    prop = rng.choice(["Confidential", "商业秘密", "内部资料", "Classification: Strictly Confidential"])
    return Labelled(
        "properties", Document("docx", (name, TextPart(PROPERTIES, prop), TextPart(BODY, "\n".join(body)))), True
    )


def _about_secrecy(rng: random.Random, i: int) -> Labelled:
    name = TextPart(NAME, f"note_{i}.docx")
    way = i % 6
    if way == 0:
        title = _fill(rng, rng.choice(NEWS_TITLES))
        lines = [title, _fill(rng, "{firm} 2024-0{k}-1{k} 来源：法制日报"), *_lines(rng, NEWS_BODY, rng.randint(3, 7))]
        return Labelled(
            "news",
            Document(
                "pdf", (name, TextPart(TITLE, title), *[TextPart(BODY, x, page_line=n) for n, x in enumerate(lines, 1)])
            ),
            False,
        )
    if way == 1:
        title = _fill(rng, rng.choice(POLICY_TITLES))
        lines = [title, *_lines(rng, POLICY_LINES, rng.randint(4, 9))]
        return Labelled(
            "policy",
            Document("docx", (name, TextPart(TITLE, title), TextPart(HEADER, title), TextPart(BODY, "\n".join(lines)))),
            False,
        )
    if way == 2:
        title = rng.choice(NDA_TITLES)
        lines = [title, *_lines(rng, NDA_LINES, rng.randint(4, 8))]
        nda_name = TextPart(NAME, f"{title}_{rng.randint(1, 99)}.docx")
        return Labelled(
            "nda", Document("docx", (nda_name, TextPart(TITLE, title), TextPart(BODY, "\n".join(lines)))), False
        )
    if way == 3:
        lines = _lines(rng, TRAINING_LINES, rng.randint(3, 7))
        return Labelled(
            "training", Document("pptx", (name, TextPart(TITLE, lines[0]), TextPart(BODY, "\n".join(lines)))), False
        )
    if way == 4:
        lines = _lines(rng, JD_LINES, rng.randint(3, 7))
        return Labelled("job description", Document("docx", (name, TextPart(BODY, "\n".join(lines)))), False)
    # an ordinary business document that mentions nothing
    return Labelled("plain", Document("docx", (name, TextPart(BODY, "\n".join(_business(rng, 8))))), False)


def _state(rng: random.Random, i: int) -> Labelled:
    name = TextPart(NAME, f"file_{i}.pdf")
    body = _business(rng, 6)
    if i % 2:
        mark = _fill(rng, rng.choice(STATE_LINES))
        where = rng.choice(["pdf top", "header", "first line"])
        if where == "header":
            return Labelled(
                "state header",
                Document("docx", (name, TextPart(HEADER, mark), TextPart(BODY, "\n".join(body)))),
                False,
                "mark",
            )
        if where == "pdf top":
            parts = [TextPart(BODY, x, page_line=n) for n, x in enumerate([mark, *body], 1)]
            return Labelled("state pdf top", Document("pdf", (name, *parts)), False, "mark")
        return Labelled(
            "state first line", Document("docx", (name, TextPart(BODY, "\n".join([mark, *body])))), False, "mark"
        )
    mention = rng.choice(STATE_MENTIONS)
    lines = [*body[:3], mention, *body[3:]]
    return Labelled("state mention", Document("pptx", (name, TextPart(BODY, "\n".join(lines)))), False, "mention")


def corpus(seed: int = 15, each: int = 96) -> list[Labelled]:
    """each marked documents, each about secrecy or plain, and each // 2 with state-secret ★ forms."""
    rng = random.Random(seed)
    return (
        [_marked(rng, i) for i in range(each)]
        + [_about_secrecy(rng, i) for i in range(each)]
        + [_state(rng, i) for i in range(each // 2)]
    )
