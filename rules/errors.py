"""Errors that carry where they are: FILE:LINE:COL: key.path: message (hint)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class LocatedError:
    file: str
    line: int  # 1-based; 0 when the whole file is meant
    col: int  # 1-based
    key_path: str  # e.g. "agent.classified[0].level"; "" for the document
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        text = f"{where}: {self.key_path}: {self.message}" if self.key_path else f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class InvalidInput(Exception):
    """Raised once with every error found, after the whole input was read."""

    def __init__(self, errors: list[LocatedError]):
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.col, e.key_path))
        super().__init__("\n".join(str(e) for e in self.errors))


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """A hint naming the closest valid choice, or listing them when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "expected one of: " + ", ".join(sorted(choices))
