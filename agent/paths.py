"""File names as events carry them: readable text plus the raw bytes when they are not UTF-8.

Linux file names are bytes. Python hands them to us as str with surrogate escapes; JSON cannot
carry those, so the event gets a readable form (undecodable bytes as \\xNN) and, only when
needed, the exact bytes in base64 so nothing is lost.
"""

from __future__ import annotations

import base64
import os
import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def readable(path: str) -> tuple[str, str | None]:
    """(readable text, base64 of the raw bytes or None when the name is valid UTF-8)."""
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), base64.b64encode(raw).decode("ascii")


def without_surrogates(text: str) -> str:
    """Text with every lone surrogate written out (\\xNN for an undecodable byte, \\uDXXX else).

    A lone surrogate cannot be encoded as UTF-8, so neither SQLite nor the collector can store it;
    for a path this gives the same text as readable().
    """
    return _SURROGATE.sub(_escape_surrogate, text)


def _escape_surrogate(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def from_raw(text: str, raw_b64: str | None) -> str:
    """The file system path back from an event's (text, raw) pair."""
    if raw_b64:
        return os.fsdecode(base64.b64decode(raw_b64))
    return text


def is_under(path: str, folder: str) -> bool:
    folder = folder.rstrip(os.sep) or os.sep
    return path == folder or path.startswith(folder + os.sep) or folder == os.sep
