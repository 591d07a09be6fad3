"""Documents of a pump maker's file server, genre by genre, each firm in its own house style.

A Doc is what a writer needs (title, header, footer, paragraphs, one table) plus its ground truth:
how many identifiers of each kind it holds and whether it carries a marking. Prose comes from the
word-level generator of tests/agent/content/lineage_corpus.py; what firms really share comes from
here: standard contract clauses, payment and delivery terms, template headings, policy wording.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from bench.fileserver import identifiers as ids
from tests.agent.content.lineage_corpus import paragraph, sentence


@dataclass(frozen=True)
class Firm:
    key: str
    zh: str
    en: str
    area: str  # county code of its registration (in its USCC)
    series: str  # product series prefix
    doc_prefix: str  # document numbering
    marking_zh: str  # its usual marking line ("" when it marks nothing)
    marking_en: str
    numbering: str  # "一、" | "1." | "第一章"
    uscc: str = ""


FIRMS = (
    Firm(
        "ours",
        "浙江恒信泵业有限公司",
        "Zhejiang Hengxin Pump Co., Ltd.",
        "331081",
        "HXB",
        "HX",
        "内部资料 注意保密",
        "CONFIDENTIAL",
        "一、",
    ),
    Firm(
        "donghai",
        "台州东海泵阀制造有限公司",
        "Taizhou Donghai Pump & Valve Co., Ltd.",
        "331004",
        "DHP",
        "DH",
        "【商业秘密】",
        "COMPANY CONFIDENTIAL",
        "1.",
    ),
    Firm(
        "shenyuan",
        "上海申源流体设备有限公司",
        "Shanghai Shenyuan Fluid Equipment Co., Ltd.",
        "310115",
        "SY",
        "SYF",
        "",
        "",
        "第一章",
    ),
    Firm(
        "taige",
        "江苏泰格水泵股份有限公司",
        "Jiangsu Taige Water Pump Co., Ltd.",
        "320583",
        "TG",
        "TGB",
        "密级：核心商密",
        "TRADE SECRET",
        "一、",
    ),
)
MARKED, STATE = "trade", "state"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严莫孔向常汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文斌宇浩凯鹏飞婷雪琳晨欣怡佳俊亮辉波海燕玲兰峰丹"
DEPTS = ("技术部", "生产部", "质量部", "销售部", "采购部", "财务部", "人事行政部", "装配车间", "机加车间", "铸造车间")
EN_NAMES = (
    "Li Wei",
    "Zhang Min",
    "Wang Fang",
    "Chen Jie",
    "Liu Yang",
    "Zhao Lei",
    "Huang Jing",
    "Zhou Tao",
    "Wu Hao",
    "Xu Lin",
)
CUSTOMERS = (
    "水务集团",
    "热电有限公司",
    "化工股份有限公司",
    "市政工程有限公司",
    "环保科技有限公司",
    "石化设备有限公司",
    "制药有限公司",
    "钢铁有限公司",
)
CITIES = (
    "杭州",
    "宁波",
    "温州",
    "绍兴",
    "嘉兴",
    "湖州",
    "金华",
    "台州",
    "苏州",
    "无锡",
    "合肥",
    "南昌",
    "武汉",
    "长沙",
    "成都",
    "郑州",
)
# Clauses every Chinese sales contract carries in some wording: the shared boilerplate.
STANDARD_CLAUSES = (
    "本合同自双方签字盖章之日起生效，合同一式两份，双方各执一份，具有同等法律效力。",
    "因本合同引起的或与本合同有关的任何争议，双方应友好协商解决；协商不成的，任何一方均可向合同签订地人民法院提起诉讼。",
    "货款支付方式：合同签订后预付合同总价的30%，货到验收合格后支付60%，余款10%作为质保金，质保期满后无息支付。",
    "交货地点为需方指定地点，运输费用由供方承担，货物毁损、灭失的风险自交付时起转移至需方。",
    "质量保证期为设备安装调试验收合格之日起十二个月或发货之日起十八个月，以先到者为准。",
    "任何一方因不可抗力不能履行合同的，应及时通知对方，并在合理期限内提供相关证明，双方可据此部分或全部免除责任。",
    "供方逾期交货的，每逾期一日按逾期部分货款的千分之五向需方支付违约金，但违约金总额不超过合同总价的百分之五。",
    "双方对在履行本合同过程中知悉的对方商业秘密负有保密义务，未经对方书面同意不得向任何第三方披露。",
    "本合同未尽事宜，由双方另行协商并签订补充协议，补充协议与本合同具有同等法律效力。",
    "需方应在货到后七日内组织验收，逾期未提出书面异议的，视为验收合格。",
)
EN_CLAUSES = (
    "This Agreement shall come into force on the date of signature by both parties and is made in two counterparts.",
    "Any dispute arising out of or in connection with this Agreement shall be settled by friendly negotiation.",
    "Payment terms: 30% advance payment upon signing, 60% upon acceptance, 10% retention after the warranty period.",
    "The warranty period is twelve months from commissioning or eighteen months from shipment, whichever comes first.",
    "Neither party shall be liable for failure to perform caused by force majeure, provided that prompt notice is given.",
)
QUOTE_TERMS = (
    "以上报价含13%增值税及运费。",
    "报价有效期：自报价之日起30天。",
    "交货期：收到预付款后25个工作日。",
    "付款方式：预付30%，发货前付清余款。",
    "质保期：12个月。",
    "包装：木箱包装，符合出口标准。",
)
NEWS = (
    "{city}市中级人民法院近日审结一起侵犯商业秘密案件，被告人{name}在离职前将原单位的泵体图纸和工艺参数拷贝至个人U盘，"
    "并提供给竞争对手使用，造成权利人损失{money}万元，法院以侵犯商业秘密罪判处其有期徒刑{years}年。",
    "据{city}市市场监督管理局通报，某泵业企业技术人员违反保密协议，通过个人邮箱外发客户名单和报价单，"
    "监管部门依据《反不正当竞争法》对涉事企业处以罚款{money}万元。",
    "专家提醒，企业应建立商业秘密保护制度，对技术图纸、配方和客户名单等采取保密措施，明确标注“内部资料 注意保密”等密级标识。",
)
POLICY = (
    "第{n}条 本制度所称商业秘密，是指不为公众所知悉、具有商业价值并经公司采取相应保密措施的技术信息和经营信息。",
    "第{n}条 涉密文件应当标明密级，分为核心商密、普通商密两级；对外提供的资料须经部门负责人审批。",
    "第{n}条 员工不得将标注“内部资料”或“商业秘密”的文件复制到个人存储设备或通过个人邮箱、网盘外发。",
    "第{n}条 员工离职时应交还全部涉密资料，并继续履行保密义务，违反本制度的，公司将依法追究其法律责任。",
    "第{n}条 国家秘密文件按“绝密★”“机密★”“秘密★”标志管理，本公司不承接涉及国家秘密的业务。",
)


@dataclass
class Doc:
    genre: str
    lang: str
    title: str
    paragraphs: list[str]
    header: str = ""
    footer: str = ""
    table: list[list[str]] = field(default_factory=list)  # first row is the header
    values: list[tuple[str, str]] = field(default_factory=list)  # (detector id, identifier) it holds
    marking: str | None = None  # MARKED | STATE | None
    marking_text: str = ""  # the line that marks it (a copy that drops it is not marked)

    def ids(self) -> Counter:
        """Identifiers held, by detector id: those of `values` still in the text."""
        text = "\n".join(self.lines())
        return Counter(kind for kind, value in self.values if value in text)

    def marked(self) -> str | None:
        if (
            self.marking
            and self.marking_text
            and (self.marking_text in self.header or self.marking_text in self.paragraphs)
        ):
            return self.marking
        return None

    def lines(self) -> list[str]:
        """The text a txt copy holds, in reading order."""
        rows = ["\t".join(r) for r in self.table]
        return [x for x in (self.header, self.title, *self.paragraphs, *rows, self.footer) if x]


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


def _heading(firm: Firm, n: int, text: str) -> str:
    zh_numbers = "一二三四五六七八九十"
    if firm.numbering == "一、":
        return f"{zh_numbers[(n - 1) % 10]}、{text}"
    if firm.numbering == "第一章":
        return f"第{zh_numbers[(n - 1) % 10]}章 {text}"
    return f"{n}. {text}"


def _mark(rng: random.Random, firm: Firm, doc: Doc, p_marked: float) -> Doc:
    """The firm's marking in the header (or first line), on a share of its documents."""
    if rng.random() >= p_marked:
        return doc
    line = firm.marking_en if doc.lang == "en" else firm.marking_zh
    if not line:
        return doc
    doc.header = (doc.header + " " if doc.header else "") + line
    doc.marking, doc.marking_text = MARKED, line
    return doc


def _prose(rng: random.Random, lang: str, count: int) -> list[str]:
    return [paragraph(rng, lang) for _ in range(count)]


def spec(rng: random.Random, firm: Firm, lang: str) -> Doc:
    model = f"{firm.series}{rng.choice((50, 65, 80, 100, 125, 150))}-{rng.randint(160, 400)}"
    if lang == "en":
        title = f"{firm.en} Technical Specification {model} ({firm.doc_prefix}-TS-{rng.randint(2018, 2025)}-{rng.randint(1, 99):03d})"
        heads = ("Scope", "Performance", "Materials", "Tests", "Packing")
    else:
        title = f"{model}型离心泵技术规格书 {firm.doc_prefix}-TS-{rng.randint(2018, 2025)}-{rng.randint(1, 99):03d}"
        heads = ("适用范围", "性能参数", "主要零部件材料", "试验与检验", "包装与运输")
    paras = []
    for n, h in enumerate(heads, 1):
        paras.append(_heading(firm, n, h) if lang == "zh" else f"{n}. {h}")
        paras += _prose(rng, lang, rng.randint(1, 4))
    table = [["参数", "数值", "单位"] if lang == "zh" else ["Parameter", "Value", "Unit"]]
    for name, unit, lo, hi in (
        ("流量", "m³/h", 10, 500),
        ("扬程", "m", 8, 120),
        ("转速", "r/min", 1450, 2960),
        ("轴功率", "kW", 2, 160),
        ("效率", "%", 55, 86),
        ("必需汽蚀余量", "m", 2, 8),
    ):
        table.append([name, str(round(rng.uniform(lo, hi), 1)), unit])
    doc = Doc(
        "spec",
        lang,
        title,
        paras,
        footer=f"{firm.zh} 技术部" if lang == "zh" else f"{firm.en} Engineering",
        table=table,
    )
    if firm.key == "ours" and lang == "zh" and rng.random() < 0.4:
        doc.paragraphs.insert(0, "密级：核心商密")
        doc.marking, doc.marking_text = MARKED, "密级：核心商密"
    return doc


def drawings(rng: random.Random, firm: Firm, lang: str) -> Doc:
    model = f"{firm.series}{rng.choice((50, 80, 100, 150))}"
    title = f"{model} 图纸目录" if lang == "zh" else f"{model} drawing list"
    table = [
        ["图号", "名称", "材料", "数量", "版本"] if lang == "zh" else ["Drawing no.", "Name", "Material", "Qty", "Rev"]
    ]
    parts = ("泵体", "泵盖", "叶轮", "主轴", "轴承体", "机械密封", "口环", "联轴器", "底座", "轴套", "挡水圈", "平衡盘")
    materials = ("HT250", "QT450-10", "ZG230-450", "304", "316L", "2Cr13", "45#", "CD4MCu")
    for i in range(rng.randint(12, 40)):
        table.append(
            [
                f"{model}-{rng.randint(1, 9):02d}-{i + 1:03d}",
                rng.choice(parts),
                rng.choice(materials),
                str(rng.randint(1, 8)),
                rng.choice("ABCD"),
            ]
        )
    paras = _prose(rng, lang, rng.randint(1, 2))
    return Doc("drawings", lang, title, paras, table=table)


def contract(rng: random.Random, firm: Firm, lang: str) -> Doc:
    buyer = f"{rng.choice(CITIES)}{rng.choice(CUSTOMERS)}"
    buyer_uscc, contact = ids.uscc(rng), ids.mobile(rng)
    no = f"{firm.doc_prefix}-HT-{rng.randint(2019, 2025)}{rng.randint(1, 999):04d}"
    if lang == "en":
        paras = [
            f"Contract No. {no}",
            f"Seller: {firm.en}, USCC {firm.uscc}",
            f"Buyer: {buyer}, USCC {buyer_uscc}",
            f"Buyer contact mobile: {contact}",
        ]
        paras += _prose(rng, lang, rng.randint(2, 5)) + rng.sample(EN_CLAUSES, rng.randint(2, 5))
        doc = Doc("contract", lang, f"Sales Contract {no}", paras)
    else:
        paras = [
            f"合同编号：{no}",
            f"供方：{firm.zh}",
            f"统一社会信用代码：{firm.uscc}",
            f"需方：{buyer}",
            f"统一社会信用代码：{buyer_uscc}",
            f"需方联系人：{person(rng)} 手机：{contact}",
            f"开户行：中国工商银行{rng.choice(CITIES)}支行 账号：{ids.corporate_account(rng)}",
        ]
        clauses = rng.sample(STANDARD_CLAUSES, rng.randint(4, 8))
        for n, clause in enumerate(clauses, 1):
            paras.append(f"第{n}条 " + clause)
            if rng.random() < 0.6:
                paras.append(paragraph(rng, lang))
        doc = Doc("contract", lang, f"工业品买卖合同 {no}", paras)
    doc.values += [("cn_uscc", firm.uscc), ("cn_uscc", buyer_uscc), ("cn_mobile", contact)]
    return doc


def quotation(rng: random.Random, firm: Firm, lang: str) -> Doc:
    title = (
        f"报价单 {firm.doc_prefix}-BJ-{rng.randint(20190101, 20251231)}"
        if lang == "zh"
        else f"Quotation {firm.doc_prefix}-Q-{rng.randint(1000, 9999)}"
    )
    table = [
        ["序号", "型号", "名称", "数量", "单价(元)", "金额(元)"]
        if lang == "zh"
        else ["No.", "Model", "Item", "Qty", "Unit price", "Amount"]
    ]
    total = 0
    for i in range(rng.randint(3, 15)):
        qty, price = rng.randint(1, 20), rng.randint(800, 90000)
        total += qty * price
        table.append(
            [
                str(i + 1),
                f"{firm.series}{rng.randint(40, 200)}-{rng.randint(100, 400)}",
                rng.choice(("离心泵", "管道泵", "多级泵", "化工泵", "备件包")),
                str(qty),
                f"{price:,}",
                f"{qty * price:,}",
            ]
        )
    paras = [f"致：{rng.choice(CITIES)}{rng.choice(CUSTOMERS)}" if lang == "zh" else "To whom it may concern,"]
    paras += rng.sample(QUOTE_TERMS, rng.randint(3, 6)) if lang == "zh" else rng.sample(EN_CLAUSES, 2)
    paras.append(f"合计：{total:,}元" if lang == "zh" else f"Total: CNY {total:,}")
    paras.append(f"联系人：{person(rng)} 电话：0576-{rng.randint(80000000, 89999999)}")
    return Doc("quotation", lang, title, paras, table=table)


def roster(rng: random.Random, firm: Firm, rows: int, lang: str = "zh") -> Doc:
    table = [["工号", "姓名", "性别", "部门", "身份证号", "手机", "工资卡号", "入职日期"]]
    values = []
    for i in range(rows):
        rid, mob, card = ids.resident_id(rng), ids.mobile(rng), ids.bank_card(rng)
        values += [("cn_resident_id", rid), ("cn_mobile", mob), ("bank_card", card)]
        table.append(
            [
                f"{firm.doc_prefix}{i + 1:04d}",
                person(rng),
                rng.choice("男女"),
                rng.choice(DEPTS),
                rid,
                mob,
                card,
                f"{rng.randint(2005, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            ]
        )
    intro = [f"截至{rng.randint(2022, 2025)}年{rng.randint(1, 12)}月，共{rows}人。"]
    return Doc("roster", lang, f"{firm.zh} 员工花名册", intro, table=table, values=values)


def customers(rng: random.Random, firm: Firm, rows: int, lang: str = "zh") -> Doc:
    table = [["客户名称", "统一社会信用代码", "联系人", "手机", "地址", "年采购额(万元)"]]
    values = []
    for _ in range(rows):
        city, code, mob = rng.choice(CITIES), ids.uscc(rng), ids.mobile(rng)
        values += [("cn_uscc", code), ("cn_mobile", mob)]
        table.append(
            [
                f"{city}{rng.choice(CUSTOMERS)}",
                code,
                person(rng),
                mob,
                f"{city}市{rng.choice('东西南北中')}环路{rng.randint(1, 999)}号",
                str(rng.randint(5, 900)),
            ]
        )
    return Doc("customers", lang, f"{firm.zh} 客户名单", [], table=table, values=values)


def source_code(rng: random.Random, firm: Firm, lang: str = "en") -> Doc:
    fn = rng.choice(("pid_step", "flow_estimate", "npsh_margin", "vfd_ramp", "seal_leak_check"))
    lines = [
        f"# {firm.en} pump controller firmware: {fn}",
        "import math",
        "",
        f"def {fn}(speed_rpm, head_m, flow_m3h):",
    ]
    for _ in range(rng.randint(15, 60)):
        a, b = (
            rng.choice(("speed_rpm", "head_m", "flow_m3h", "k", "err", "out")),
            rng.choice(("speed_rpm", "head_m", "flow_m3h")),
        )
        lines.append(
            f"    {a} = {b} * {round(rng.uniform(0.01, 9.99), 3)} + math.sqrt(abs({b}) + {rng.randint(1, 99)})"
        )
    lines.append("    return out if 'out' in dir() else 0.0")
    return Doc("code", "en", f"{fn}.py", lines)


def slides(rng: random.Random, firm: Firm, lang: str) -> Doc:
    title = f"{firm.series}系列新品发布与市场策略" if lang == "zh" else f"{firm.series} series launch and market plan"
    return Doc("slides", lang, title, [sentence(rng, lang) for _ in range(rng.randint(8, 24))])


def minutes(rng: random.Random, firm: Firm, lang: str) -> Doc:
    if lang == "zh":
        head = [
            f"会议时间：{rng.randint(2020, 2025)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日",
            f"参会人员：{'、'.join(person(rng) for _ in range(5))}",
        ]
        title = f"{rng.choice(('技术评审', '生产调度', '质量分析', '项目推进'))}会议纪要"
    else:
        head = [f"Attendees: {', '.join(rng.sample(EN_NAMES, 4))}"]
        title = "Minutes of the project review meeting"
    return Doc("minutes", lang, title, head + _prose(rng, lang, rng.randint(3, 8)))


def policy(rng: random.Random, firm: Firm, lang: str = "zh") -> Doc:
    """A policy about secrecy: mentions every marking term in its prose and is marked by none."""
    paras = [f"为加强{firm.zh}商业秘密保护，根据《中华人民共和国反不正当竞争法》，制定本制度。"]
    paras += [p.format(n=n) for n, p in enumerate(POLICY, 1)] + _prose(rng, "zh", rng.randint(1, 3))
    return Doc("policy", "zh", f"{firm.zh}保密制度", paras)


def nda(rng: random.Random, firm: Firm, lang: str) -> Doc:
    if lang == "en":
        return Doc(
            "nda",
            "en",
            "Confidentiality Agreement",
            [
                f"This Non-Disclosure Agreement is made between {firm.en} and {person(rng)}.",
                "The Recipient shall keep all Confidential Information and trade secrets of the Company strictly confidential.",
                *_prose(rng, "en", 2),
            ],
        )
    return Doc(
        "nda",
        "zh",
        "保密协议",
        [
            f"甲方：{firm.zh}",
            f"乙方：{person(rng)}",
            "乙方应对在职期间知悉的甲方商业秘密严格保密，包括但不限于技术图纸、工艺参数、客户名单和报价信息。",
            "乙方离职后两年内仍应履行保密义务，违反本协议的，应向甲方支付违约金并赔偿全部损失。",
            *_prose(rng, "zh", 2),
        ],
    )


def news(rng: random.Random, firm: Firm, lang: str = "zh") -> Doc:
    paras = [
        t.format(city=rng.choice(CITIES), name=person(rng), money=rng.randint(50, 900), years=rng.randint(1, 5))
        for t in rng.sample(NEWS, 2)
    ]
    return Doc("news", "zh", f"{rng.choice(CITIES)}一泵业企业员工侵犯商业秘密被判刑", paras + _prose(rng, "zh", 1))


def state_secret(rng: random.Random, firm: Firm, lang: str = "zh") -> Doc:
    """A rare positive: a defence order's pump specification under a state-secret mark."""
    doc = spec(rng, firm, "zh")
    doc.paragraphs = [p for p in doc.paragraphs if p != "密级：核心商密"]
    doc.genre, doc.marking, doc.marking_text = "state_secret", STATE, "机密★5年"
    doc.header = "机密★5年"
    return doc


GENRES = {
    "spec": spec,
    "drawings": drawings,
    "contract": contract,
    "quotation": quotation,
    "code": source_code,
    "slides": slides,
    "minutes": minutes,
    "policy": policy,
    "nda": nda,
    "news": news,
}


def document(rng: random.Random, firm: Firm, genre: str, lang: str, p_marked: float) -> Doc:
    doc = GENRES[genre](rng, firm, lang)
    if genre in ("policy", "nda", "news", "code"):
        return doc  # about secrecy, or carrying nothing: never marked
    if doc.marking is None:
        _mark(rng, firm, doc, p_marked)
    return doc
