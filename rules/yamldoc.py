"""YAML loading that keeps positions, rejects duplicate keys and bounds aliases.

Config and rule files are parsed to PyYAML nodes (which carry line and column) and read by
`Reader` helpers, so every error can say exactly where it is.
"""

from __future__ import annotations

import yaml

from rules.errors import InvalidInput, LocatedError

MAX_ALIASES = 100  # far more than any honest config needs; stops "billion laughs"
MAX_DEPTH = 100  # nesting levels; deeper input would exhaust Python's recursion limit
MAX_BYTES = 4 * 1024 * 1024


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts aliases (each one may expand a whole subtree)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.alias_count = 0
        self.depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases", event.start_mark
                )
        if self.depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"more than {MAX_DEPTH} levels of nesting", self.peek_event().start_mark
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_document(text: str, filename: str) -> yaml.Node | None:
    """Compose one YAML document into nodes; raise InvalidInput on syntax errors."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InvalidInput([LocatedError(filename, 1, 1, "", f"file is larger than {MAX_BYTES} bytes")])
    try:
        loader = _Loader(text)  # checks every character first
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - text.rfind("\n", 0, exc.position)
        problem = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
        raise InvalidInput([LocatedError(filename, line, col, "", f"YAML syntax error: {problem}")]) from None
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise InvalidInput([_syntax_error(exc, text, filename)]) from None
    except yaml.YAMLError as exc:
        raise InvalidInput([LocatedError(filename, 1, 1, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    if node is not None:
        errors: list[LocatedError] = []
        _check_duplicate_keys(node, filename, "", errors)
        if errors:
            raise InvalidInput(errors)
    return node


# PyYAML notices an unclosed bracket or quote only where it gives up (often the next line or the
# end of the file); its context mark is where the bracket or quote was opened.
_OPENED = {
    "while parsing a flow sequence": "]",
    "while parsing a flow mapping": "}",
    "while scanning a quoted scalar": "",  # the closing quote is the opening one
}
_INDENTATION_PROBLEMS = ("block end", "mapping values are not allowed", "could not find expected ':'")


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, filename: str) -> LocatedError:
    """A syntax error located where the user must look, with what to check there."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or exc.context or "invalid YAML"
    opened = exc.context_mark
    if exc.context in _OPENED and opened is not None and 0 <= opened.index < len(text):
        opener = text[opened.index]
        closer = _OPENED[exc.context] or opener
        at_end = "end of stream" in problem or "<stream end>" in problem
        at = "the end of the file" if at_end else f"line {line}"
        hint = f"close it with {closer}" + ("" if at_end else f", or check the indentation of line {line}")
        message = f"YAML syntax error: this {opener} is not closed before {at} ({problem})"
        return LocatedError(filename, opened.line + 1, opened.column + 1, "", message, hint)
    if problem.startswith("found character '\\t'"):
        hint = f"indent line {line} with spaces, not tabs"
        return LocatedError(filename, line, col, "", f"YAML syntax error: {problem}", hint)
    if any(words in problem for words in _INDENTATION_PROBLEMS):
        hint = f"check the indentation of line {line}"
        if "mapping values" in problem:
            hint += "; a value holding ': ' needs quotes"
        return LocatedError(filename, line, col, "", f"YAML syntax error: {problem}", hint)
    return LocatedError(filename, line, col, "", f"YAML syntax error: {problem}")


def read_text(path: str) -> str:
    """Read a config or rule file as UTF-8, turning I/O problems into located errors."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InvalidInput([LocatedError(path, 0, 0, "", f"cannot read file: {exc.strerror}")]) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput([LocatedError(path, line, 1, "", "file is not valid UTF-8")]) from None


def _check_duplicate_keys(node: yaml.Node, filename: str, path: str, errors: list, seen=None) -> None:
    seen = seen if seen is not None else set()
    if id(node) in seen:  # aliases share nodes; visit each once
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            child = join_path(path, key if key is not None else "?")
            if key is not None and key in keys:
                first = keys[key].start_mark.line + 1
                errors.append(
                    LocatedError(
                        filename,
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        child,
                        "duplicate key",
                        f"first defined on line {first}",
                    )
                )
            elif key is not None:
                keys[key] = key_node
            _check_duplicate_keys(value_node, filename, child, errors, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, filename, f"{path}[{i}]", errors, seen)


def join_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key
