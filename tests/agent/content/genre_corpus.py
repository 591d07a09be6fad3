"""A same-genre corpus for partial-copy lineage: one firm's register against its competitors'.

Issue 15: lineage traced a competitor's quotation to the firm's because both carry the same
payment terms and template headings. This corpus is built to show that. Four firms (a pump maker,
a valve maker, a coatings firm, a bearing maker), each with its own name, products, model codes,
customers and house phrasing, write the same genres (quotations 报价单, contracts 合同, technical
specifications 技术规格书, meeting minutes 会议纪要, customer letters) in Chinese and English.
They share what firms really share: payment, delivery and warranty terms, 不可抗力, governing
law, dispute and confidentiality clauses, template headings, table headers and signature blocks,
drawn from this module's own pool (SHARED_ZH, SHARED_EN), which holds the usual wordings and
variants of them (other percentages, days and words): about half are not word for word in the
shipped list (agent/content/boilerplate/), so the list alone cannot carry the result.

- register: the pump maker's documents (the classified folder).
- negatives: the other three firms' documents of the same genres, and third-party text
  (the licence files of the packages installed beside the tests).
- derived copies of register documents keeping 100, 75, 50, 30 or 10% of their blocks (in
  order), with word and number edits, reformatted: lines re-wrapped, tables re-laid as a PDF
  extraction gives them (cell by cell, column by column, or rows with wrapped cells).
- pastes: 1-5 consecutive prose paragraphs of a register document put into a letter of the
  pump maker's own kind (new text around them), with their share of the source.

Deterministic (seeded); files are txt (UTF-8 or GB18030) or docx, indexed with a real
FingerprintIndex and inspected with the real inspect_file by `evaluate()`, which keeps every
candidate of every lookup so the thresholds can be swept (`curve()`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agent import index as index_module
from agent.config import ClassifiedFolder
from agent.content.inspect import inspect_file
from agent.index import FingerprintIndex, PartialCandidate, is_match
from tests.agent.content import makers

KEPT = (1.0, 0.75, 0.5, 0.3, 0.1)
GENRES = ("quotation", "contract", "spec", "minutes", "letter")


@dataclass(frozen=True)
class Firm:
    key: str
    zh: str
    en: str
    zh_nouns: tuple[str, ...]
    en_nouns: tuple[str, ...]
    zh_params: tuple[str, ...]
    en_params: tuple[str, ...]
    model: str  # a model code pattern: A letter, 9 digit
    zh_house: tuple[str, ...]  # the firm's own stock sentences
    en_house: tuple[str, ...]


FIRMS = (
    Firm(
        "pump",
        "浙江恒流泵业有限公司",
        "Zhejiang Hengliu Pump Co., Ltd.",
        tuple("叶轮 泵体 泵盖 机械密封 轴套 口环 联轴器 底座 蜗壳 导叶 平衡盘 吸入室 电机 轴承体".split()),
        tuple(
            "impeller casing cover mechanical-seal sleeve wear-ring coupling baseplate volute diffuser balance-disc motor".split()
        ),
        tuple("流量 扬程 汽蚀余量 效率 转速 轴功率 振动烈度 噪声".split()),
        tuple("flow head NPSH efficiency speed shaft-power vibration noise".split()),
        "AA99-99-999",
        ("恒流泵业坚持以水力模型为核心", "我司泵产品均经过闭式试验台性能测试", "恒流售后服务热线全天候响应"),
        (
            "Hengliu hydraulic models are tested on our closed-loop rig",
            "every Hengliu pump is run-tested before despatch",
        ),
    ),
    Firm(
        "valve",
        "温州正通阀门有限公司",
        "Wenzhou Zhengtong Valve Co., Ltd.",
        tuple("阀体 阀盖 阀座 阀杆 闸板 球体 蝶板 填料 密封面 执行器 手轮 法兰 中法兰垫片 支架".split()),
        tuple(
            "body bonnet seat stem gate ball disc packing sealing-face actuator handwheel flange gasket yoke".split()
        ),
        tuple("公称压力 公称通径 泄漏等级 启闭力矩 壳体试验压力 密封试验压力 流阻系数".split()),
        tuple("pressure-rating bore leakage-class torque shell-test seat-test flow-coefficient".split()),
        "A99A-99A DN999",
        ("正通阀门全部产品执行逐台压力试验", "正通坚持硬密封面堆焊司太立合金"),
        ("Zhengtong tests every valve for shell and seat leakage", "Zhengtong seats are overlaid with Stellite"),
    ),
    Firm(
        "coat",
        "上海涂界新材料有限公司",
        "Shanghai Tujie Coatings Co., Ltd.",
        tuple("环氧富锌底漆 环氧云铁中间漆 聚氨酯面漆 氟碳面漆 稀释剂 固化剂 色浆 树脂 颜料 助剂 漆膜".split()),
        tuple(
            "zinc-rich-primer epoxy-MIO polyurethane-topcoat fluorocarbon thinner hardener tint resin pigment additive film".split()
        ),
        tuple("干膜厚度 附着力 耐盐雾 表干时间 实干时间 光泽 固体含量 细度".split()),
        tuple("dry-film-thickness adhesion salt-spray touch-dry hard-dry gloss solids fineness".split()),
        "A99-9 A999",
        ("涂界配方经过两千小时盐雾验证", "涂界技术服务工程师全程指导施工"),
        ("Tujie systems pass 2000 hours of salt spray", "a Tujie engineer supervises every first application"),
    ),
    Firm(
        "bear",
        "宁波精轴轴承有限公司",
        "Ningbo Jingzhou Bearing Co., Ltd.",
        tuple("内圈 外圈 滚动体 保持架 滚道 密封件 润滑脂 套圈 钢球 滚子 防尘盖".split()),
        tuple("inner-ring outer-ring rolling-element cage raceway seal grease ring ball roller shield".split()),
        tuple("径向游隙 额定动载荷 极限转速 圆度 振动值 硬度 表面粗糙度".split()),
        tuple("radial-clearance dynamic-load limiting-speed roundness vibration-level hardness roughness".split()),
        "9999-9AA",
        ("精轴轴承套圈全部采用真空脱气轴承钢", "精轴每批产品附振动检测报告"),
        (
            "Jingzhou rings are made of vacuum-degassed bearing steel",
            "each Jingzhou batch ships with a vibration report",
        ),
    ),
)
REGISTER_FIRM = "pump"

CUSTOMERS_ZH = tuple(
    "中石化镇海炼化 华能电厂 宝钢股份 万华化学 北控水务 中建三局 三一重工 格力电器 美的集团 中粮糖业".split()
)
CUSTOMERS_EN = (
    "Sinopec Zhenhai",
    "Huaneng Power",
    "Baosteel",
    "Wanhua Chemical",
    "Veolia Water",
    "ABB",
    "Siemens Energy",
)
DEPTS_ZH = tuple("技术部 质量部 生产部 销售部 采购部 售后服务部 工艺科".split())
DEPTS_EN = ("engineering", "quality", "production", "sales", "purchasing", "service", "process engineering")
STANDARDS = (
    "GB/T 3216",
    "GB/T 13927",
    "JB/T 7744",
    "API 610",
    "API 598",
    "ISO 12944",
    "GB/T 307.1",
    "ISO 9906",
    "HG/T 3668",
)
UNITS_ZH = ("m³/h", "m", "%", "r/min", "kW", "MPa", "μm", "h", "mm", "N·m")
UNITS_EN = ("m3/h", "m", "%", "rpm", "kW", "MPa", "um", "h", "mm", "Nm")

# The boilerplate firms share, in their usual wordings and variants (the shipped list holds some
# of these word for word, not all: the corpus must not be the list).
SHARED_ZH = (
    "付款方式：预付30%，发货前付清余款。",
    "付款方式：预付40%，发货前结清全部余款。",
    "付款方式：合同签订后预付30%，货到验收合格后付60%，余款10%作为质保金，质保期满后无息支付。",
    "合同签订后七个工作日内，买方向卖方支付合同总价的30%作为预付款。",
    "以上报价含13%增值税及运费。",
    "以上价格含税含运费，不含安装调试费用，税率13%。",
    "交货期：收到预付款后30个工作日内发货。",
    "交货期：收到预付款后25个工作日内交货，特殊规格另议。",
    "交货地点：买方指定地点，运输费用由卖方承担。",
    "包装方式：按照行业标准包装，适合长途运输，包装物不回收。",
    "报价有效期：自报价之日起30天内有效。",
    "本报价有效期为十五天，过期请重新询价。",
    "质保期：设备验收合格之日起十二个月或发货之日起十八个月，以先到者为准。",
    "质保期内因产品本身质量问题出现故障，卖方负责免费维修或更换，买方使用不当造成的损坏除外。",
    "因买方使用不当、人为损坏或不可抗力造成的损坏不在质保范围内。",
    "根据《中华人民共和国民法典》及相关法律法规，甲乙双方本着平等自愿、诚实信用的原则，经友好协商，就下列事项达成一致，签订本合同。",
    "本合同自双方签字盖章之日起生效。",
    "本合同一式两份，甲乙双方各执一份，具有同等法律效力。",
    "本合同一式四份，双方各执两份，均具有同等法律效力。",
    "本合同未尽事宜，由双方协商解决，并可另行签订补充协议，补充协议与本合同具有同等法律效力。",
    "不可抗力：由于地震、台风、水灾、火灾、战争、疫情以及其他不能预见并且对其发生和后果不能防止或避免的不可抗力事件，致使合同不能履行的，遭受不可抗力的一方应立即通知对方，并在十五日内提供有关部门出具的证明文件。",
    "因不可抗力不能履行合同的一方，应在事件发生后十日内书面通知对方，并提供当地政府部门出具的证明，双方据此协商延期履行或解除合同。",
    "争议解决：凡因本合同引起的或与本合同有关的任何争议，双方应友好协商解决；协商不成的，任何一方均可向合同签订地有管辖权的人民法院提起诉讼。",
    "因履行本合同发生争议，双方协商解决；协商不成，可向原告所在地人民法院起诉。",
    "本合同的订立、效力、解释、履行及争议的解决均适用中华人民共和国法律。",
    "违约责任：卖方逾期交货的，每逾期一日，按逾期交货部分货款的千分之五向买方支付违约金，但违约金总额不超过合同总价的百分之十。",
    "买方逾期付款的，每逾期一日，按逾期付款金额的千分之三向卖方支付违约金。",
    "保密条款：双方对在合作过程中知悉的对方商业秘密及技术秘密负有保密义务，未经对方书面同意，不得向任何第三方披露。本条款在合同终止后继续有效。",
    "货物到达后，买方应在七日内组织验收，逾期未提出书面异议的视为验收合格。",
    "验收标准：按国家标准、行业标准及双方签订的技术协议进行验收。",
    "产品出厂前应经质量检验部门检验合格，并附有产品合格证。",
    "产品应存放在通风、干燥、无腐蚀性气体的室内，并避免日晒雨淋。",
    "本规格书规定了产品的技术要求、试验方法、检验规则以及标志、包装、运输和贮存要求。",
    "如有任何疑问，请随时与我们联系。感谢贵公司对我司产品的关注与支持！",
    "请贵公司收到本函后予以回复确认。顺颂商祺！",
)
SHARED_EN = (
    "Payment terms: 30% advance payment, balance before shipment.",
    "Payment terms: 40% down payment with the order, the balance before despatch.",
    "Payment shall be made by telegraphic transfer within thirty (30) days of the date of invoice.",
    "Prices are quoted in US dollars and are exclusive of VAT and other applicable taxes.",
    "Prices are valid for 30 days from the date of this quotation.",
    "This offer remains valid for fifteen (15) days and is subject to our final confirmation.",
    "Delivery time: within 30 working days after receipt of the advance payment.",
    "Delivery: 6-8 weeks after receipt of order and down payment, subject to prior sale.",
    "Delivery terms shall be interpreted in accordance with Incoterms 2020.",
    "Packing: standard export packing suitable for long distance sea transportation.",
    "Warranty: 12 months from the date of commissioning or 18 months from the date of shipment, whichever comes first.",
    "The seller warrants the goods against defects in material and workmanship for eighteen (18) months after delivery.",
    "This warranty does not cover damage caused by misuse, negligence, improper installation, accident or normal wear and tear.",
    "Force Majeure: Neither party shall be liable for any failure or delay in performance caused by circumstances beyond its reasonable control, including acts of God, war, riot, fire, flood, epidemic, strike or governmental action.",
    "A party prevented from performing by force majeure shall inform the other party within ten (10) days and furnish a certificate from the local chamber of commerce.",
    "Governing Law: This agreement shall be governed by and construed in accordance with the laws of the People's Republic of China.",
    "Any dispute arising out of or in connection with this contract shall be settled through friendly negotiation; failing that, it shall be submitted to the China International Economic and Trade Arbitration Commission for arbitration in accordance with its rules in effect at the time of applying for arbitration. The arbitral award is final and binding upon both parties.",
    "Disputes not settled amicably within sixty days shall be referred to arbitration in Singapore under the SIAC Rules.",
    "Confidentiality: Each party shall keep confidential all information disclosed by the other party in connection with this agreement and shall not disclose it to any third party without the prior written consent of the disclosing party.",
    "This agreement constitutes the entire agreement between the parties and supersedes all prior agreements, understandings and negotiations, whether written or oral.",
    "If any provision of this agreement is held invalid or unenforceable, the remaining provisions shall remain in full force and effect.",
    "This contract is made in two originals, one for each party, with equal legal effect.",
    "Liquidated damages for late delivery: 0.5% of the value of the delayed goods per week, up to a maximum of 10% of the contract value.",
    "Each product shall be inspected and tested by the quality department before leaving the factory and shall be delivered with a certificate of conformity.",
    "This specification covers the technical requirements, test methods, inspection rules, marking, packing, transport and storage of the product.",
    "Should you have any questions, please do not hesitate to contact us. We look forward to your early reply.",
    "Thank you for your continued support and we look forward to working with you.",
)
HEADINGS = {  # template headings and table headers, by genre and language
    ("quotation", "zh"): ("报价单", "序号\t产品名称\t规格型号\t单位\t数量\t单价（元）\t金额（元）\t备注", "商务条款"),
    ("quotation", "en"): (
        "QUOTATION",
        "Item No.\tDescription\tModel\tQty\tUnit\tUnit Price\tAmount\tRemarks",
        "Commercial Terms",
    ),
    ("contract", "zh"): ("购销合同", "序号\t产品名称\t规格型号\t单位\t数量\t单价（元）\t金额（元）\t备注", "合同条款"),
    ("contract", "en"): (
        "SALES CONTRACT",
        "Item No.\tDescription\tModel\tQty\tUnit\tUnit Price\tAmount\tRemarks",
        "Terms and Conditions",
    ),
    ("spec", "zh"): ("技术规格书", "参数\t单位\t数值\t允差\t检验方法", "技术要求"),
    ("spec", "en"): (
        "TECHNICAL SPECIFICATION",
        "Parameter\tUnit\tValue\tTolerance\tTest Method",
        "Technical Requirements",
    ),
    ("minutes", "zh"): ("会议纪要", "序号\t事项\t责任人\t完成时间\t状态", "会议内容"),
    ("minutes", "en"): ("MINUTES OF MEETING", "No.\tAction\tOwner\tDue Date\tStatus", "Discussion"),
    ("letter", "zh"): ("致客户函", "", "正文"),
    ("letter", "en"): ("LETTER TO CUSTOMER", "", "Body"),
}
SIGNATURE_ZH = "甲方（盖章）： 乙方（盖章）： 法定代表人或授权代表（签字）： 签订日期： 年 月 日"
SIGNATURE_EN = (
    "For and on behalf of the Buyer: For and on behalf of the Seller: Authorised Signature: Name: Title: Date:"
)


@dataclass(frozen=True)
class Block:
    kind: str  # prose | shared (boilerplate) | heading | table
    text: str = ""
    rows: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Doc:
    firm: str
    genre: str
    lang: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Query:
    path: Path
    kind: str  # derived | paste | same-genre | third-party
    source: Path | None = None
    kept: float = 0.0  # derived: share of the source's blocks kept; paste: share of its text
    paragraphs: int = 0  # paste: how many paragraphs
    genre: str = ""
    lang: str = ""
    layout: str = ""  # how it was re-laid (derived)


@dataclass
class Corpus:
    root: Path
    register: list[Path] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)


# --- text ----------------------------------------------------------------------------------


def _code(rng: random.Random, pattern: str) -> str:
    return "".join(
        rng.choice("ABCDEFGHJKLMNPQRSTWXYZ") if c == "A" else str(rng.randint(0, 9)) if c == "9" else c for c in pattern
    )


def _num(rng: random.Random) -> str:
    return rng.choice((str(rng.randint(2, 900)), f"{rng.uniform(0.1, 99):.1f}", f"{rng.uniform(0.01, 9):.2f}"))


def _zh_sentence(rng: random.Random, f: Firm) -> str:
    n, p, d = rng.choice(f.zh_nouns), rng.choice(f.zh_params), rng.choice(DEPTS_ZH)
    u = rng.choice(UNITS_ZH)
    forms = (
        f"{_code(rng, f.model)}型产品的{n}{p}实测为{_num(rng)}{u}，较上一批次{rng.choice(('提高', '降低'))}{_num(rng)}%",
        f"针对{rng.choice(CUSTOMERS_ZH)}反馈的{n}{rng.choice(('磨损', '泄漏', '振动偏大', '温升过高', '尺寸超差'))}问题，{d}已于{rng.randint(1, 12)}月{rng.randint(1, 28)}日完成{rng.choice(('原因分析', '整改', '复测', '工艺调整'))}",
        f"{n}的{p}按{rng.choice(STANDARDS)}控制在{_num(rng)}{u}以内，由{d}逐批抽检并记录",
        f"第{rng.randint(1, 9)}批{n}改用{rng.choice(('铸钢', '双相不锈钢', '球墨铸铁', '碳化硅', '氟橡胶', '聚四氟乙烯'))}后，{p}稳定在{_num(rng)}{u}",
        f"{rng.choice(f.zh_house)}，{n}与{rng.choice(f.zh_nouns)}的配合间隙为{_num(rng)}mm",
        f"{d}建议将{n}的{rng.choice(('加工余量', '热处理温度', '装配扭矩', '检验频次'))}调整为{_num(rng)}{u}，并在{rng.randint(2, 8)}周内验证",
    )
    return rng.choice(forms) + "。"


def _en_sentence(rng: random.Random, f: Firm) -> str:
    n, p, d = rng.choice(f.en_nouns), rng.choice(f.en_params), rng.choice(DEPTS_EN)
    u = rng.choice(UNITS_EN)
    forms = (
        f"The measured {p} of the {n} on model {_code(rng, f.model)} was {_num(rng)} {u}, {rng.choice(('up', 'down'))} {_num(rng)}% on the previous batch",
        f"Following the {n} {rng.choice(('wear', 'leakage', 'vibration', 'overheating', 'dimension'))} complaint from {rng.choice(CUSTOMERS_EN)}, the {d} team completed the {rng.choice(('root cause analysis', 'corrective action', 're-test', 'process change'))} on {rng.randint(1, 28)} {rng.choice(('March', 'May', 'July', 'October'))}",
        f"The {p} of the {n} is held within {_num(rng)} {u} to {rng.choice(STANDARDS)} and checked batch by batch by {d}",
        f"Since batch {rng.randint(1, 9)} the {n} is made of {rng.choice(('cast steel', 'duplex steel', 'ductile iron', 'silicon carbide', 'FKM', 'PTFE'))} and its {p} stays at {_num(rng)} {u}",
        f"{rng.choice(f.en_house).capitalize()}; the clearance between {n} and {rng.choice(f.en_nouns)} is {_num(rng)} mm",
        f"The {d} team proposes to set the {rng.choice(('machining allowance', 'heat treatment temperature', 'assembly torque', 'inspection rate'))} of the {n} to {_num(rng)} {u} and to verify it within {rng.randint(2, 8)} weeks",
    )
    return rng.choice(forms) + "."


def prose(rng: random.Random, f: Firm, lang: str, sentences: int) -> str:
    if lang == "zh":
        return "".join(_zh_sentence(rng, f) for _ in range(sentences))
    return " ".join(_en_sentence(rng, f) for _ in range(sentences))


def _table(rng: random.Random, f: Firm, genre: str, lang: str, rows: int) -> Block:
    header = HEADINGS[(genre, lang)][1].split("\t")
    body = []
    for i in range(rows):
        if genre in ("quotation", "contract"):
            qty, price = rng.randint(1, 40), rng.randint(800, 90000)
            name = rng.choice(f.zh_nouns if lang == "zh" else f.en_nouns)
            unit = rng.choice(("台", "套", "件")) if lang == "zh" else rng.choice(("set", "pc", "unit"))
            body.append((str(i + 1), name, _code(rng, f.model), unit, str(qty), f"{price:,}", f"{qty * price:,}", ""))
        elif genre == "spec":
            p = rng.choice(f.zh_params if lang == "zh" else f.en_params)
            body.append(
                (
                    p,
                    rng.choice(UNITS_ZH if lang == "zh" else UNITS_EN),
                    _num(rng),
                    f"±{_num(rng)}",
                    rng.choice(STANDARDS),
                )
            )
        else:
            owner = (
                rng.choice(("张工", "李经理", "王主任", "陈工", "刘总"))
                if lang == "zh"
                else rng.choice(("Zhang", "Li", "Wang", "Chen"))
            )
            body.append(
                (str(i + 1), prose(rng, f, lang, 1)[:38], owner, f"{rng.randint(1, 12)}/{rng.randint(1, 28)}", "open")
            )
    return Block("table", rows=(tuple(header), *body))


def document(rng: random.Random, f: Firm, genre: str, lang: str) -> Doc:
    """One document of a genre in the firm's house style: its name and headings, its own prose
    and tables, and the shared clauses of the genre."""
    title, _, section = HEADINGS[(genre, lang)]
    shared = SHARED_ZH if lang == "zh" else SHARED_EN
    name = f.zh if lang == "zh" else f.en
    sent = (3, 7) if lang == "zh" else (2, 5)
    blocks = [Block("heading", f"{name} {title} {_code(rng, 'AA-9999-999')}")]
    customer = rng.choice(CUSTOMERS_ZH if lang == "zh" else CUSTOMERS_EN)
    blocks.append(Block("heading", f"致：{customer}" if lang == "zh" else f"To: {customer}"))
    own = {"quotation": (1, 3), "contract": (3, 10), "spec": (6, 30), "minutes": (2, 8), "letter": (2, 6)}[genre]
    clauses = {"quotation": (3, 7), "contract": (6, 12), "spec": (2, 4), "minutes": (0, 1), "letter": (1, 2)}[genre]
    if genre != "letter":
        blocks.append(_table(rng, f, genre, lang, rng.randint(3, 14)))
    blocks.append(Block("heading", section))
    paragraphs = [Block("prose", prose(rng, f, lang, rng.randint(*sent))) for _ in range(rng.randint(*own))]
    terms = [Block("shared", c) for c in rng.sample(shared, rng.randint(*clauses))]
    mixed = paragraphs + terms
    if genre == "contract":  # articles: own text and clauses interleaved
        rng.shuffle(mixed)
    blocks += mixed
    if genre in ("quotation", "contract"):
        blocks.append(Block("shared", SIGNATURE_ZH if lang == "zh" else SIGNATURE_EN))
    return Doc(f.key, genre, lang, tuple(blocks))


# --- derivatives ---------------------------------------------------------------------------


def _edit(rng: random.Random, text: str, rate: float) -> str:
    """About `rate` of the sentences (some 100 characters) get a word or number change."""
    out = list(text)
    for _ in range(int(len(text) * rate / 100)):
        i = rng.randrange(len(out))
        if out[i].isdigit():
            out[i] = str((int(out[i]) + 1) % 10)
        elif out[i].isalpha():
            out[i] = rng.choice("的和及与A-e") if not out[i].isascii() else rng.choice("aeiou")
    return "".join(out)


def derive(rng: random.Random, doc: Doc, kept: float) -> Doc:
    """A copy keeping `kept` of the document's blocks (a consecutive run, so a 10% copy is a
    passage), lightly edited, with the copier's own lines around it."""
    blocks = list(doc.blocks)
    count = max(1, round(kept * len(blocks)))
    start = rng.randint(0, len(blocks) - count)
    chosen = [
        Block(b.kind, _edit(rng, b.text, rng.uniform(0.1, 0.4)), b.rows) if b.kind == "prose" else b
        for b in blocks[start : start + count]
    ]
    firm = next(f for f in FIRMS if f.key == doc.firm)
    chosen.insert(0, Block("prose", prose(rng, firm, doc.lang, 1)))
    return Doc(doc.firm, doc.genre, doc.lang, tuple(chosen))


def paste(rng: random.Random, doc: Doc, paragraphs: int, host: Doc) -> tuple[Doc, float] | None:
    """`paragraphs` consecutive prose paragraphs of doc put into another document; None when doc
    has fewer. The share is of the source's rendered text bytes."""
    runs = [
        i
        for i in range(len(doc.blocks) - paragraphs + 1)
        if all(b.kind == "prose" for b in doc.blocks[i : i + paragraphs])
    ]
    if not runs:
        return None
    i = rng.choice(runs)
    pasted = doc.blocks[i : i + paragraphs]
    share = sum(len(b.text.encode()) for b in pasted) / len(render(doc, "rows").encode())
    blocks = list(host.blocks)
    at = rng.randint(1, len(blocks))
    return Doc(host.firm, host.genre, host.lang, tuple(blocks[:at]) + pasted + tuple(blocks[at:])), share


# --- layout --------------------------------------------------------------------------------


def render(doc: Doc, layout: str, rng: random.Random | None = None) -> str:
    """The text as an extraction gives it. rows: table rows tab-separated (docx, xlsx);
    pdf-cells: one cell a line, column by column; pdf-wrapped: rows space-separated with long
    cells wrapped onto a second line; rewrapped: prose broken into lines of 20-60 characters and
    tables as pdf-cells."""
    lines = []
    for b in doc.blocks:
        if b.kind != "table":
            text = b.text
            if layout == "rewrapped" and rng is not None:
                width = rng.randint(20, 60)
                text = "\n".join(text[i : i + width] for i in range(0, len(text), width))
            lines.append(text)
        elif layout == "rows":
            lines += ["\t".join(r) for r in b.rows]
        elif layout in ("pdf-cells", "rewrapped"):
            lines += [r[c] for c in range(len(b.rows[0])) for r in b.rows if c < len(r) and r[c]]
        else:  # pdf-wrapped: a cell over 8 characters wraps, its tail on the next line
            for r in b.rows:
                lines.append(" ".join(c[:8] for c in r if c))
                tails = " ".join(c[8:] for c in r if len(c) > 8)
                if tails:
                    lines.append(tails)
    return "\n".join(lines) + "\n"


def write(text: str, path: Path, fmt: str) -> Path:
    if fmt == "docx":
        return makers.docx(path.with_suffix(".docx"), body=tuple(text.splitlines()))
    encoding = "gb18030" if fmt == "gbk" else "utf-8"
    path = path.with_suffix(".txt")
    path.write_text(text, encoding=encoding)
    return path


def _fmt(rng: random.Random, lang: str) -> str:
    return rng.choice(("txt", "docx", "gbk" if lang == "zh" else "txt"))


# --- the corpus ----------------------------------------------------------------------------


def third_party(limit: int = 200) -> list[Path]:
    """Licence texts of the packages installed beside the tests (real third-party text)."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    found = sorted(p for p in site.glob("*/LICEN[SC]E*") if p.is_file()) + sorted(
        p for p in site.glob("*/licenses/*") if p.is_file()
    )
    return found[:limit]


def build(
    root: Path, seed: int = 15, register: int = 120, negatives: int = 300, derived: int = 40, pastes: int = 60
) -> Corpus:
    """register: the pump maker's documents; negatives: the others' (same genres, both
    languages); derived: copies per kept fraction; pastes: per paragraph count (1-5)."""
    rng = random.Random(seed)
    corpus = Corpus(root)
    for name in ("register", "queries"):
        (root / name).mkdir(parents=True, exist_ok=True)
    pump = next(f for f in FIRMS if f.key == REGISTER_FIRM)
    others = [f for f in FIRMS if f.key != REGISTER_FIRM]
    docs: list[Doc] = []
    for i in range(register):
        lang = ("zh", "en")[i % 2]
        doc = document(rng, pump, GENRES[(i // 2) % len(GENRES)], lang)
        docs.append(doc)
        corpus.register.append(
            write(render(doc, "rows"), root / "register" / f"r{i:03d}-{doc.genre}-{lang}", _fmt(rng, lang))
        )
    q = root / "queries"
    for i in range(negatives):
        lang = ("zh", "en")[i % 2]
        genre = GENRES[(i // 2) % len(GENRES)]
        doc = document(rng, others[i % len(others)], genre, lang)
        path = write(render(doc, "rows"), q / f"n{i:03d}-{doc.firm}-{genre}-{lang}", _fmt(rng, lang))
        corpus.queries.append(Query(path, "same-genre", genre=genre, lang=lang))
    for kept in KEPT:
        for i in range(derived):
            s = rng.randrange(register)
            layout = ("rows", "pdf-cells", "pdf-wrapped", "rewrapped")[i % 4]
            copy = derive(rng, docs[s], kept)
            path = write(
                render(copy, layout, rng), q / f"d{int(kept * 100):03d}-{i:03d}-{layout}", _fmt(rng, copy.lang)
            )
            corpus.queries.append(Query(path, "derived", corpus.register[s], kept, 0, copy.genre, copy.lang, layout))
    for n in range(1, 6):
        made = 0
        while made < pastes:
            s = rng.randrange(register)
            host = document(rng, pump, "letter", docs[s].lang)
            pasted = paste(rng, docs[s], n, host)
            if pasted is None:
                continue
            copy, share = pasted
            path = write(render(copy, "rows"), q / f"p{n}-{made:03d}", _fmt(rng, copy.lang))
            corpus.queries.append(Query(path, "paste", corpus.register[s], share, n, docs[s].genre, copy.lang))
            made += 1
    corpus.queries += [Query(p, "third-party") for p in third_party()]
    return corpus


# --- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Looked:
    query: Query
    candidates: tuple[tuple[str, PartialCandidate], ...]  # (source path, candidate)


@dataclass(frozen=True)
class Measured:
    looked: tuple[Looked, ...]
    register: int
    seconds: float

    def of(self, kind: str) -> list[Looked]:
        return [x for x in self.looked if x.query.kind == kind]


def evaluate(corpus: Corpus, state: Path) -> Measured:
    """Index the register (a real FingerprintIndex on disk), inspect every query with the real
    inspect_file and keep every candidate lookup_partial would weigh."""
    started = time.perf_counter()
    folders = (ClassifiedFolder(str(corpus.root / "register"), "core", "Pump maker's documents"),)
    index = FingerprintIndex(str(state / "index.db"), folders)
    index.refresh()
    paths = {}
    looked = []
    for q in corpus.queries:
        found = []
        for c in index.partial_candidates(inspect_file(str(q.path)).fingerprints):
            if c.sha256 not in paths:
                source = index.lookup_sha256(c.sha256)
                paths[c.sha256] = source.path if source else ""
            found.append((paths[c.sha256], c))
        looked.append(Looked(q, tuple(found)))
    index.close()
    return Measured(tuple(looked), len(corpus.register), time.perf_counter() - started)


def traced(x: Looked, min_matched: float | None = None, min_similarity: float | None = None) -> str | None:
    """The source path lookup_partial's rule picks at these thresholds (None: no match)."""
    ok = [(c.rank, p) for p, c in x.candidates if is_match(c, min_matched, min_similarity)]
    return max(ok)[1] if ok else None


@dataclass(frozen=True)
class Point:
    min_matched: float  # the weighted evidence asked (MIN_EVIDENCE)
    min_similarity: float  # the weighted share asked
    fp_same_genre: float
    fp_third_party: int
    recall_half: float  # derived copies keeping >= 50%, traced to their source
    recall_paste3: float  # pastes of >= 3 paragraphs that are >= 10% of their source
    wrong_source: int


def point(m: Measured, min_matched: float | None = None, min_similarity: float | None = None) -> Point:
    mm = index_module.MIN_EVIDENCE if min_matched is None else min_matched
    ms = index_module.MIN_SIMILARITY if min_similarity is None else min_similarity
    neg = m.of("same-genre")
    half = [x for x in m.of("derived") if x.query.kept >= 0.5]
    p3 = [x for x in m.of("paste") if x.query.paragraphs >= 3 and x.query.kept >= 0.10]
    wrong = sum(1 for x in m.of("derived") + m.of("paste") if traced(x, mm, ms) not in (None, str(x.query.source)))
    return Point(
        mm,
        ms,
        sum(traced(x, mm, ms) is not None for x in neg) / len(neg),
        sum(traced(x, mm, ms) is not None for x in m.of("third-party")),
        _recall(half, mm, ms),
        _recall(p3, mm, ms),
        wrong,
    )


def _recall(items: Iterable[Looked], mm: float, ms: float) -> float:
    items = list(items)
    return sum(traced(x, mm, ms) == str(x.query.source) for x in items) / max(1, len(items))


def recall_by(m: Measured, kind: str, key, mm: float | None = None, ms: float | None = None) -> dict:
    """Recall of one kind of query grouped by key(query)."""
    groups: dict = {}
    for x in m.of(kind):
        groups.setdefault(key(x.query), []).append(x)
    mm = index_module.MIN_EVIDENCE if mm is None else mm
    ms = index_module.MIN_SIMILARITY if ms is None else ms
    return {k: (_recall(v, mm, ms), len(v)) for k, v in sorted(groups.items())}


def curve(m: Measured, matched=(2, 2.5, 3, 4, 5, 6), shares=(0.05, 0.08, 0.1, 0.12, 0.15, 0.2)) -> list[Point]:
    return [point(m, mm, ms) for mm in matched for ms in shares]
