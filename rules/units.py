"""Sizes as rules write them (200MB, 1.5GB; 1024-based) and as explanations show them."""

from __future__ import annotations

import re

SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


def parse_size(text: str) -> float | None:
    """Bytes for '200MB', '1.5 GB', '4096'; None when it is not a size."""
    match = SIZE.match(text)
    if not match:
        return None
    return float(match.group(1)) * SIZE_UNITS[(match.group(2) or "").lower()]


def format_bytes(n: float) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}".replace(".0 ", " ")
    return f"{int(n)} B"
