"""Rule files as the console changes them: turning one rule on or off in its YAML text, and errors by line.

The rule loader reports errors as `file:line:col: key.path: message`; the rules page shows them
beside the uploaded text's lines. Turning a rule off edits the `enabled:` key inside the rule's
block (or adds one under its first line), so the firm's comments and layout stay as written, and
the result goes through the same validation as an upload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ERROR = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$", re.DOTALL)


@dataclass(frozen=True)
class LocatedMessage:
    file: str
    line: int  # 0 when the error is about the whole file or set
    message: str


def locate(errors: list[str]) -> list[LocatedMessage]:
    result = []
    for text in errors:
        m = ERROR.match(text)
        if m:
            result.append(LocatedMessage(m["file"], int(m["line"]), m["message"]))
        else:
            file, _, message = text.partition(": ")
            result.append(LocatedMessage(file if message else "", 0, message or text))
    return result


def set_enabled(text: str, line: int, col: int, enabled: bool) -> str:
    """The file with the rule whose mapping starts at line:col (1-based) enabled or disabled."""
    lines = text.split("\n")
    indent = col - 1
    start = line - 1
    if not (0 <= start < len(lines)):
        raise ValueError(f"line {line} is not in the file")
    value = "true" if enabled else "false"
    key = re.compile(r"^" + " " * indent + r"enabled\s*:")
    end = start + 1
    while end < len(lines):
        current = lines[end]
        stripped = current.strip()
        if stripped and not stripped.startswith("#") and len(current) - len(current.lstrip(" ")) < indent:
            break
        if key.match(current):
            comment = current[current.index("#"):] if " #" in current else ""
            lines[end] = " " * indent + f"enabled: {value}" + (f"  {comment}" if comment else "")
            return "\n".join(lines)
        end += 1
    lines.insert(start + 1, " " * indent + f"enabled: {value}")
    return "\n".join(lines)
