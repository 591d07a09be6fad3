"""The Chinese docs (README.zh-CN.md, docs/zh-CN/) stay true to the repository, the console and the CLIs.

They are read by a 保密办 officer and an IT administrator who will not check them against the code,
so what can drift is checked here: every link resolves inside the repository (nothing points at a
sibling folder or the internet), every console label the guide quotes in 「」 or bold is a text the
Chinese console really shows, every `miwei-server …` / `miwei-agent …` command quoted is a real
subcommand with real options, every rule example loads with the shipped packs, and the category
names match the console's.
"""

from __future__ import annotations

import argparse
import os
import re
from urllib.parse import unquote, urlparse

import pytest
from babel.messages.pofile import read_po

from agent import cli as agent_cli
from rules.lint import lint
from rules.loader import default_pack_sources, load_rule_sources
from rules.model import CATEGORIES
from server import cli as server_cli
from server.console.labels import CATEGORY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZH_DIR = os.path.join(ROOT, "docs", "zh-CN")
EXPECTED = ["README.zh-CN.md", "docs/zh-CN/deploy.md", "docs/zh-CN/console.md", "docs/zh-CN/rules.md"]
CATALOGUE = os.path.join(ROOT, "server", "console", "locale", "zh", "LC_MESSAGES", "messages.po")
# Links that may leave the repository: well-known standards only (none is used today).
STANDARD_HOSTS = frozenset(
    {"www.w3.org", "datatracker.ietf.org", "www.rfc-editor.org", "unicode.org", "www.unicode.org"}
)

FENCE = re.compile(r"(?ms)^```[^\n]*\n(.*?)^```")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
QUOTED_LABEL = re.compile(r"「([^」\n]+)」")
BOLD = re.compile(r"\*\*([^*\n]+)\*\*")
COMMAND = re.compile(r"(?<![\w-])miwei-(server|agent)(?:\.exe)?[ \t]+([^\s`]+)([^\n`]*)")
RULE_ID = re.compile(r"(?m)^- id: (\S+)")


def zh_docs() -> list[str]:
    """The Chinese docs that exist (test_the_chinese_docs_exist says which must)."""
    found = (
        [f"docs/zh-CN/{f}" for f in sorted(os.listdir(ZH_DIR)) if f.endswith(".md")] if os.path.isdir(ZH_DIR) else []
    )
    return ([] if not os.path.exists(os.path.join(ROOT, "README.zh-CN.md")) else ["README.zh-CN.md"]) + found


def read(rel: str) -> str:
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def prose(text: str) -> str:
    """The text outside code blocks and code spans: where links and labels are read."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def code_pieces(text: str) -> list[str]:
    """Every code block and code span: where commands are quoted."""
    blocks = FENCE.findall(text)
    return blocks + INLINE_CODE.findall(FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation (full-width too) dropped, spaces to '-'."""
    text = re.sub(r"`|\*\*", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(rel: str) -> set[str]:
    return {slug(h) for h in re.findall(r"(?m)^#{1,6} (.+)$", FENCE.sub("", read(rel)))}


def link_problems(rel: str, text: str) -> list[str]:
    """Why each link of a doc (repo-relative path rel) does not resolve inside the repository."""
    problems = []
    if "../shared" in text:
        problems.append(f"{rel}: names ../shared")
    for target in LINK.findall(prose(text)):
        url = urlparse(target)
        if url.scheme or target.startswith("//"):
            if url.scheme not in ("http", "https") or url.hostname not in STANDARD_HOSTS:
                problems.append(f"{rel}: {target} leaves the repository")
            continue
        path, _, anchor = target.partition("#")
        doc = os.path.join(ROOT, os.path.dirname(rel), unquote(path)) if path else os.path.join(ROOT, rel)
        real = os.path.realpath(doc)
        if os.path.commonpath([real, os.path.realpath(ROOT)]) != os.path.realpath(ROOT):
            problems.append(f"{rel}: {target} is outside the repository")
        elif not os.path.exists(real):
            problems.append(f"{rel}: {target} does not exist")
        elif anchor and real.endswith(".md") and unquote(anchor) not in anchors(os.path.relpath(real, ROOT)):
            problems.append(f"{rel}: {target} names no heading of its file")
    return problems


def catalogue_texts() -> set[str]:
    with open(CATALOGUE, "rb") as f:
        return {m.string for m in read_po(f) if m.id and isinstance(m.string, str) and m.string}


def label_problems(text: str, known: set[str]) -> list[str]:
    """Labels quoted in 「」 or bold that the Chinese console does not show."""
    body = prose(text)
    quoted = QUOTED_LABEL.findall(body) + BOLD.findall(body)
    return [f"「{q}」 is not a text of the zh catalogue" for q in quoted if q.strip() not in known]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the CLI has no subcommands")


PARSERS = {"server": server_cli._parser, "agent": agent_cli._parser}


def command_problems(text: str) -> list[str]:
    """Quoted `miwei-server X --opt` / `miwei-agent X --opt` that the CLIs' argparse does not know."""
    problems = []
    subs = {side: subcommands(make()) for side, make in PARSERS.items()}
    for piece in code_pieces(text):
        for side, name, rest in COMMAND.findall(piece):
            quoted = f"miwei-{side} {name}{rest}".strip()
            if name not in subs[side]:
                problems.append(f"{quoted!r}: no subcommand {name!r}")
                continue
            rest = re.split(r"\s#\s", rest)[0]  # a shell comment after the command
            known = set(subs[side][name]._option_string_actions)
            for flag in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", rest):
                if flag not in known:
                    problems.append(f"{quoted!r}: {name} has no option {flag}")
    return problems


def test_the_chinese_docs_exist():
    assert set(EXPECTED) <= set(zh_docs())


def test_readme_links_the_chinese_docs_from_its_top():
    head = read("README.md").split("\n## ", 1)[0]
    assert "(README.zh-CN.md)" in head


def test_the_chinese_readme_names_the_english_reference():
    text = read("README.zh-CN.md")
    for rel in ("README.md", "docs/deploy.md", "docs/console.md", "rules/README.md", "config.example.yaml"):
        assert f"]({rel})" in text, rel


@pytest.mark.parametrize("rel", zh_docs())
def test_every_link_resolves_inside_the_repository(rel):
    assert link_problems(rel, read(rel)) == []


def test_every_console_label_quoted_in_the_guide_is_a_text_the_console_shows():
    text = read("docs/zh-CN/console.md")
    assert len(QUOTED_LABEL.findall(prose(text))) >= 100  # the guide quotes the UI, not paraphrases it
    assert label_problems(text, catalogue_texts()) == []


@pytest.mark.parametrize("rel", zh_docs())
def test_every_quoted_command_is_a_real_subcommand_with_real_options(rel):
    text = read(rel)
    assert command_problems(text) == []


def test_the_docs_quote_commands_of_both_programs():
    found = {side for rel in zh_docs() for piece in code_pieces(read(rel)) for side, _, _ in COMMAND.findall(piece)}
    assert found == {"server", "agent"}


def zh_rule_blocks() -> list[str]:
    if not os.path.exists(os.path.join(ROOT, "docs", "zh-CN", "rules.md")):
        return []  # test_the_chinese_docs_exist fails instead
    return [b for b in FENCE.findall(read("docs/zh-CN/rules.md")) if b.startswith("- id:")]


def packs_without(ids: set[str]) -> list[tuple[str, str]]:
    sources = []
    for name, text in default_pack_sources():
        chunks = re.split(r"(?m)^(?=- id: )", text)
        kept = [c for c in chunks if not (m := RULE_ID.match(c)) or m.group(1) not in ids]
        if any(RULE_ID.match(c) for c in kept):
            sources.append((name, "".join(kept)))
    return sources


@pytest.mark.parametrize("block", zh_rule_blocks(), ids=lambda b: RULE_ID.match(b).group(1))
def test_every_rule_example_loads_with_the_packs_and_without_warnings(block):
    ids = set(RULE_ID.findall(block))

    ruleset = load_rule_sources(packs_without(ids) + [("rules.zh-CN.md", block)])

    assert ids <= set(ruleset.ids)
    assert [str(w) for w in lint(ruleset) if w.file == "rules.zh-CN.md"] == []


def test_the_category_table_names_every_category_as_the_console_does():
    with open(CATALOGUE, "rb") as f:
        zh = {m.id: m.string for m in read_po(f) if m.id}
    rows = re.findall(r"(?m)^\| `([a-z-]+)` \| ([^|]+) \|", read("docs/zh-CN/rules.md"))
    table = {code: name.strip() for code, name in rows if code in CATEGORIES}

    assert set(table) == set(CATEGORIES)
    assert {code: zh[CATEGORY[code]] for code in CATEGORIES} == table


def test_every_shipped_rule_is_named_in_the_chinese_rules_doc():
    text = read("docs/zh-CN/rules.md")
    shipped = load_rule_sources(default_pack_sources()).ids
    missing = [rid for rid in shipped if f"`{rid}`" not in text]
    # MW-CLASSIFIED-REMOVED is a building block counted by MW-MASS-DELETION, raising no alert itself
    assert missing in ([], ["MW-CLASSIFIED-REMOVED"])


# The checkers themselves: each finds what it is there to find.


def test_the_link_checker_refuses_links_out_of_the_repository_and_dangling_ones():
    bad = (
        "[设计](../../../shared/DESIGN.md) [站点](https://example.com/x) [邮件](mailto:a@b.c) "
        "[无](missing.md) [锚](deploy.md#没有这一节) [好](deploy.md) [标准](https://www.rfc-editor.org/rfc/rfc9110)"
    )
    problems = link_problems("docs/zh-CN/x.md", bad)

    assert len(problems) == 6, problems
    assert not any("deploy.md)" in p or "rfc9110" in p for p in problems)


def test_the_label_checker_refuses_a_label_the_console_does_not_show():
    known = catalogue_texts()
    assert label_problems("点「确认所选」，再看 **严重**。", known) == []
    assert len(label_problems("点「批量关闭」，再看 **非常严重**。`「代码里不算」`", known)) == 2


def test_the_command_checker_refuses_unknown_subcommands_and_options():
    assert command_problems("`miwei-server create-user 张三 --role admin`") == []
    assert command_problems("```sh\nmiwei-agent status --json   # 注册状态\n```") == []
    assert len(command_problems("`miwei-server install-collector`")) == 1
    assert len(command_problems("`miwei-agent scan --recursive 文件`")) == 1
