"""YAML loading: positions kept, duplicate keys refused, aliases and nesting bounded, bad bytes located."""

from __future__ import annotations

import codecs

import pytest
import yaml

from rules.errors import InvalidInput, LocatedError
from rules.yamldoc import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, load_document, read_text


def errors_of(text: str, filename: str = "config.yaml") -> list[LocatedError]:
    with pytest.raises(InvalidInput) as caught:
        load_document(text, filename)
    return caught.value.errors


def aliases(count: int) -> str:
    return "x: &x 1\nl: [" + ", ".join(["*x"] * count) + "]\n"


def test_duplicate_key_is_located_on_its_second_occurrence_naming_the_first_line():
    errors = errors_of("agent:\n  server_url: http://a\n  log_level: info\n  server_url: http://b\n")

    assert errors == [LocatedError("config.yaml", 4, 3, "agent.server_url", "duplicate key", "first defined on line 2")]
    assert str(errors[0]) == "config.yaml:4:3: agent.server_url: duplicate key (first defined on line 2)"


def test_every_duplicate_key_is_reported_with_its_path_through_lists():
    text = "a: 1\nitems:\n  - name: x\n    name: y\n  - name: z\na: 2\n"

    assert [str(e) for e in errors_of(text)] == [
        "config.yaml:4:5: items[0].name: duplicate key (first defined on line 3)",
        "config.yaml:6:1: a: duplicate key (first defined on line 1)",
    ]


def test_quoted_and_plain_spellings_of_a_key_are_the_same_key():
    assert [str(e) for e in errors_of('level: core\n"level": internal\n')] == [
        "config.yaml:2:1: level: duplicate key (first defined on line 1)"
    ]


def test_the_same_key_in_different_mappings_is_not_a_duplicate():
    node = load_document("a:\n  x: 1\nb:\n  x: 1\nc:\n  - x: 1\n  - x: 1\n", "config.yaml")

    assert isinstance(node, yaml.MappingNode)
    assert [k.value for k, _ in node.value] == ["a", "b", "c"]


def test_nodes_keep_their_line_and_column():
    node = load_document("agent:\n  log_level: info\n", "config.yaml")

    key, value = node.value[0][1].value[0]
    assert (key.value, key.start_mark.line + 1, key.start_mark.column + 1) == ("log_level", 2, 3)
    assert (value.value, value.start_mark.line + 1, value.start_mark.column + 1) == ("info", 2, 14)


def test_aliases_up_to_the_limit_are_accepted():
    node = load_document(aliases(MAX_ALIASES), "config.yaml")

    assert len(node.value[1][1].value) == MAX_ALIASES


def test_one_alias_more_than_the_limit_is_refused_where_it_stands():
    # "l: [" is 4 characters and each "*x, " another 4: alias number 101 starts at column 405.
    assert errors_of(aliases(MAX_ALIASES + 1)) == [
        LocatedError("config.yaml", 2, 405, "", "YAML syntax error: more than 100 aliases")
    ]


def test_billion_laughs_is_refused_before_it_is_expanded():
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]" for k in range(1, 20)]

    assert [str(e) for e in errors_of("\n".join(lines))] == [
        "config.yaml:12:12: YAML syntax error: more than 100 aliases"
    ]


def test_nesting_up_to_the_limit_is_accepted():
    node = load_document("[" * MAX_DEPTH + "]" * MAX_DEPTH, "config.yaml")

    for _ in range(MAX_DEPTH - 1):
        node = node.value[0]
    assert isinstance(node, yaml.SequenceNode) and node.value == []


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deeper_nesting_is_refused_without_exhausting_the_stack(depth):
    assert errors_of("[" * depth + "]" * depth) == [
        LocatedError("config.yaml", 1, MAX_DEPTH + 1, "", "YAML syntax error: more than 100 levels of nesting")
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "a: 1\n b: 2\n",
            "config.yaml:2:3: YAML syntax error: mapping values are not allowed here"
            " (check the indentation of line 2; a value holding ': ' needs quotes)",
        ),
        (
            "a:\n\tb: 1\n",
            "config.yaml:2:1: YAML syntax error: found character '\\t' that cannot start any token"
            " (indent line 2 with spaces, not tabs)",
        ),
        (
            "a: [1, 2\n",
            "config.yaml:1:4: YAML syntax error: this [ is not closed before the end of the file"
            " (expected ',' or ']', but got '<stream end>') (close it with ])",
        ),
        (
            'a: "open\n',
            'config.yaml:1:4: YAML syntax error: this " is not closed before the end of the file'
            ' (found unexpected end of stream) (close it with ")',
        ),
        (
            "- a\nb: 1\n",
            "config.yaml:2:1: YAML syntax error: expected <block end>, but found '?' (check the indentation of line 2)",
        ),
        ("a: *nope\n", "config.yaml:1:4: YAML syntax error: found undefined alias 'nope'"),
        ("a: 1\n---\nb: 2\n", "config.yaml:2:1: YAML syntax error: but found another document"),
        (
            'a: 1\nb: "x\x07"\n',
            "config.yaml:2:6: YAML syntax error: unacceptable character #x0007: special characters are not allowed",
        ),
    ],
)
def test_syntax_error_is_located(text, expected):
    assert [str(e) for e in errors_of(text)] == [expected]


@pytest.mark.parametrize(
    "text, expected",
    [
        (  # the bracket opened on line 2 is the mistake, not line 3 where the parser gave up
            "a:\n  b: [1, 2\n  c: 3\n",
            "config.yaml:2:6: YAML syntax error: this [ is not closed before line 3"
            " (expected ',' or ']', but got ':') (close it with ], or check the indentation of line 3)",
        ),
        (
            "a: {x: 1\nb: 2\n",
            "config.yaml:1:4: YAML syntax error: this { is not closed before line 2"
            " (expected ',' or '}', but got ':') (close it with }, or check the indentation of line 2)",
        ),
        (
            "a:\n  b: 'open\n  c: 3\nd: 4\n",
            "config.yaml:2:6: YAML syntax error: this ' is not closed before the end of the file"
            " (found unexpected end of stream) (close it with ')",
        ),
        (
            "a:\n  b: 1\n c: 2\n",
            "config.yaml:3:2: YAML syntax error: expected <block end>, but found '<block mapping start>'"
            " (check the indentation of line 3)",
        ),
    ],
)
def test_syntax_error_points_at_the_opening_and_says_what_to_check(text, expected):
    assert [str(e) for e in errors_of(text)] == [expected]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_document_is_none(text):
    assert load_document(text, "config.yaml") is None


def test_document_larger_than_the_limit_is_refused():
    assert errors_of("#" * (MAX_BYTES + 1)) == [
        LocatedError("config.yaml", 1, 1, "", f"file is larger than {MAX_BYTES} bytes")
    ]


def test_file_larger_than_the_limit_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_BYTES + 10) + b"\nagent: {}\n")

    with pytest.raises(InvalidInput) as caught:
        load_document(read_text(str(path)), str(path))
    assert [str(e) for e in caught.value.errors] == [f"{path}:1:1: file is larger than {MAX_BYTES} bytes"]


def test_file_not_valid_utf8_is_refused_on_the_line_of_the_first_bad_byte(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes("agent:\n  classified:\n    - name: 产品图纸\n".encode("gbk"))

    with pytest.raises(InvalidInput) as caught:
        read_text(str(path))
    assert caught.value.errors == [LocatedError(str(path), 3, 1, "", "file is not valid UTF-8")]


def test_utf8_with_a_byte_order_mark_is_read_without_it(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(codecs.BOM_UTF8 + "agent:\n  name: 产品图纸\n".encode())

    assert read_text(str(path)) == "agent:\n  name: 产品图纸\n"


def test_missing_file_is_a_located_error_for_the_whole_file(tmp_path):
    path = str(tmp_path / "nope.yaml")

    with pytest.raises(InvalidInput) as caught:
        read_text(path)
    assert [str(e) for e in caught.value.errors] == [f"{path}:0:0: cannot read file: No such file or directory"]
