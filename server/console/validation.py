"""Validation messages, and the notes MiWei writes in an alert's history, in the viewer's language.

The modules that check input (server/register_check.py, server/devices.py, server/groups.py and
the console's form readers) say what is wrong in English, as the API answers. A console page
shows each message through `say`: in Chinese, a message of a known shape is rewritten from its
template below with the values it holds (a field name, the value typed, a limit); one of no known
shape stays as it is. Field names get Chinese words; a value the user typed is quoted as typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rules.explain_zh import SEVERITY_ZH

FIELDS_ZH = {
    "name": "名称", "level": "密级", "category": "类别", "owner_department": "责任部门", "owner_person": "责任人",
    "scope": "知悉范围", "period": "保密期限", "locations": "存放位置", "reason": "理由", "description": "说明",
    "egress": "外发位置", "heartbeat_s": "心跳间隔（秒）", "agent_version": "代理目标版本", "pattern": "设备标识模式",
    "hostname": "主机名", "os": "操作系统", "group_id": "分组", "enroll_key_id": "注册密钥",
    "status": "处置状态", "comment": "备注", "assignee": "处理人", "alert_id": "告警编号", "page": "页码",
    "per_page": "每页条数", "sort": "排序", "order": "顺序",
}  # fmt: skip
# an alert's statuses (server/alerts.py), as the console's catalogue words them
STATUS_ZH = {"open": "未处理", "acknowledged": "已确认", "resolved": "已解决", "false_positive": "误报"}

# (English message, Chinese template): {v}, {n}, ... are the parts the English one holds
_TEMPLATES: tuple[tuple[str, str], ...] = (
    (r"must be text", "必须是文本"),
    (r"must not be empty", "不能为空"),
    (r"is (?P<n>\d+) characters, at most (?P<m>\d+)", "有 {n} 个字符，最多 {m} 个"),
    (r"holds control characters", "含有控制字符"),
    (
        r"(?P<v>'.*') is not a level: one of .*",
        "{v} 不是密级：应为 core（核心）、important（重要）、general（一般）或 internal（内部）之一",
    ),
    (r"(?P<v>'.*') is not a category: .*", "{v} 不是类别：应为 技术信息 或 经营信息"),
    (r"(?P<v>'.*') is not a period: .*", "{v} 不是保密期限：应为日期 YYYY-MM-DD、长期 或 公布前"),
    (r"must be a list of \{os, pattern\}", "必须是 {{os, pattern}} 的列表"),
    (r"(?P<n>\d+) locations, at most (?P<m>\d+)", "{n} 个存放位置，最多 {m} 个"),
    (r"os (?P<v>'.*') is not one of (?P<w>.*)", "操作系统 {v} 不是 {w} 之一"),
    (
        r"(?P<v>'.*') is not os:pattern \(os linux, windows or macos\)",
        "{v} 不是“系统:路径模式”（系统为 linux、windows 或 macos）",
    ),
    (r"the register holds (?P<n>\d+) items, its limit", "台账已有 {n} 项，已达上限"),
    (r"is not a field that can be changed", "不是可以修改的字段"),
    (
        r"(?P<v>'.*') is not vendor:product:serial \(two ':' needed\), e\.g\. (?P<e>.*)",
        "{v} 不是“厂商:产品:序列号”（需要两个“:”），例如 {e}",
    ),
    (
        r"the (?P<w>\w+) part (?P<v>'.*') must be hex digits with \* or \?, e\.g\. (?P<e>.*)",
        "{w} 部分 {v} 必须是十六进制数字（可含 * 或 ?），例如 {e}",
    ),
    (r"the serial part must not contain control characters", "序列号部分不能含控制字符"),
    (
        r"(?P<v>'.*') has (?P<n>\d+) wildcards; at most (?P<m>\d+) \(\* and \?\) in one pattern",
        "{v} 含 {n} 个通配符；一个模式最多 {m} 个（* 和 ?）",
    ),
    (
        r"a medium without a hardware serial is allowed only by its exact identity, without \* or \?",
        "没有硬件序列号的介质只能按完整标识放行，不能含 * 或 ?",
    ),
    (
        r"this medium has neither a hardware serial nor a volume id: it cannot be told apart, so it cannot be allowed",
        "该介质既没有硬件序列号也没有卷标识：无法区分，因此不能放行",
    ),
    (r"the allow-list holds at most (?P<n>\d+) entries", "允许清单最多 {n} 条"),
    (r"a number of seconds, or empty for the agent's own", "应为秒数，留空则使用代理自己的设置"),
    (r"a number, or empty for the agent's own", "应为数字，留空则使用代理自己的设置"),
    (r"a number", "应为数字"),
    # triage: the alert page, the list's bulk actions and assignment (server/console/routes_alerts.py)
    (r"(?P<v>'.*') is not a status: one of .*", "{v} 不是处置状态：应为 未处理、已确认、已解决 或 误报"),
    (r"(?P<v>'.*') is not a bulk action: one of .*", "{v} 不是批量操作：应为 确认、解决、误报 或 分配"),
    (
        r"the alert is (?P<s>\w+): reopen it \(status open\) before setting it to (?P<t>\w+)",
        "告警已是「{s}」：请先「重新打开」（改为「未处理」），再改为「{t}」",
    ),
    (r"(?P<v>'.*') is not a console user with the analyst or admin role", "{v} 不是角色为分析员或管理员的控制台用户"),
    # a value the console's routes check by type (server/console/errors.py words them)
    (r"must be a whole number", "必须是整数"),
    (r"must be at least (?P<n>-?\d+)", "不能小于 {n}"),
    (r"must be at most (?P<n>-?\d+)", "不能大于 {n}"),
    (r"is not in the expected form", "格式不对"),
    (r"is missing", "缺少此项"),
    (r"is not valid", "无效"),
    # the notes MiWei writes into an alert's history (actor system)
    (r"(?P<n>\d+) more files?", "新增 {n} 个文件"),
    (r"(?P<n>\d+) more files?, (?P<m>\d+) matching events", "新增 {n} 个文件，{m} 个匹配事件"),
    (r"(?P<n>\d+) more match(?:es)?", "又匹配 {n} 次"),
    (r"(?P<a>\w+) -> (?P<b>\w+): (?P<n>\d+) files, (?P<s>.+)", "{a} → {b}：{n} 个文件，{s}"),
    (
        r"still silent after (?P<n>\d+) min \((?P<m>[\d.]+) x the limit\): severity (?P<v>\w+)",
        "静默已 {n} 分钟（阈值的 {m} 倍）：严重程度 {v}",
    ),
    (
        r"agent back after (?P<n>\d+) min \(silent (?P<s>\d+) s since (?P<t>\S+)\)",
        "代理在 {n} 分钟后恢复（自 {t} 起静默 {s} 秒）",
    ),
)
# a rule file's errors (rules/loader.py, rules/schema.py): "<key path>: <message> (<hint>)"
_RULE_TEMPLATES: tuple[tuple[str, str], ...] = (
    (r"required key is missing", "缺少必需的键"),
    (r"unknown key", "未知的键"),
    (r"unknown key (?P<v>'.*')", "未知的键 {v}"),
    (r"unknown field (?P<v>'.*')", "未知字段 {v}"),
    (r"unknown operator (?P<v>'.*')", "未知运算符 {v}"),
    (r"unknown severity (?P<v>'.*')", "未知严重程度 {v}"),
    (r"unknown threshold (?P<v>'.*')", "未知阈值 {v}"),
    (
        r"the rule needs 'when' \(an event rule\) or 'correlate' \(a correlation rule\)",
        "规则需要 'when'（事件规则）或 'correlate'（关联规则）",
    ),
    (r"a rule has either 'when' or 'correlate', not both", "一条规则只能有 'when' 或 'correlate' 之一"),
    (r"the file holds no rules", "文件中没有规则"),
    (r"duplicate rule id \(first defined at (?P<v>.*)\)", "规则编号重复（首次定义于 {v}）"),
    (r"expected a string, got (?P<v>.*)", "应为字符串，实际是 {v}"),
    (r"expected a mapping, got (?P<v>.*)", "应为映射，实际是 {v}"),
    (r"expected a list, got (?P<v>.*)", "应为列表，实际是 {v}"),
    (r"the list is empty", "列表为空"),
    (r"needs at least one operator", "至少需要一个运算符"),
    (r"did you mean (?P<v>'.*')\?", "是否想写 {v}？"),
    (r"expected one of: (?P<v>.*)", "可用的有：{v}"),
    (r"e\.g\. (?P<v>.*)", "例如 {v}"),
)
_COMPILED = tuple((re.compile(f"^{pattern}$", re.DOTALL), template) for pattern, template in _TEMPLATES)
_FIELD = re.compile(r"^(?P<field>[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+)*): (?P<rest>.*)$", re.DOTALL)


def _chinese(message: str) -> str | None:
    for pattern, template in _COMPILED:
        found = pattern.match(message)
        if found:
            parts = {k: v.replace(" or ", " 或 ") if k == "e" else v for k, v in found.groupdict().items()}
            parts.update({k: SEVERITY_ZH.get(parts[k], parts[k]) for k in ("a", "b", "v") if k in parts})
            parts.update({k: STATUS_ZH.get(parts[k], parts[k]) for k in ("s", "t") if k in parts})
            return template.format(**parts)
    return None


_RULES = tuple((re.compile(f"^{pattern}$", re.DOTALL), template) for pattern, template in _RULE_TEMPLATES)
_RULE_ERROR = re.compile(
    r"^(?P<path>[A-Za-z0-9_.\[\]-]+): (?P<message>.+?)(?: \((?P<hint>[^()]*(?:\([^()]*\)[^()]*)*)\))?$", re.DOTALL
)


def _rule_part(text: str) -> str | None:
    for pattern, template in _RULES:
        found = pattern.match(text)
        if found:
            return template.format(**found.groupdict())
    return None


def say_rule_error(message: str, lang: str) -> str:
    """A rule file's error in `lang`: 'X-1.category: required key is missing' -> 'X-1.category：缺少必需的键'."""
    if lang != "zh" or not message:
        return message
    found = _RULE_ERROR.match(message)
    path, _, whole = message.partition(": ")
    if whole and (said := _rule_part(whole)) is not None:  # a message whose own words hold parentheses
        return f"{path}：{said}"
    text = found["message"] if found else message
    said = _rule_part(text)
    if said is None:
        return message
    hint = found["hint"] if found else None
    said_hint = _rule_part(hint) if hint else None
    if hint and said_hint is None:
        return message
    return (f"{found['path']}：" if found else "") + said + (f"（{said_hint}）" if said_hint else "")


def say(message: str, lang: str) -> str:
    """The message in `lang`: 'level: 'x' is not a level: ...' -> '密级：'x' 不是密级：...' in Chinese."""
    if lang != "zh" or not message:
        return message
    whole = _chinese(message)
    if whole is not None:
        return whole
    found = _FIELD.match(message)
    if found:
        rest = _chinese(found["rest"])
        if rest is not None:
            field = found["field"]
            name = FIELDS_ZH.get(field.split("[")[0].split(".")[0], field)
            return f"{name}：{rest}"
    return message


def sayer(lang: str) -> Callable[[str], str]:
    return lambda message: say(str(message), lang)
