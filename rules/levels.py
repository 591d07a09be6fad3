"""Classification levels (商业秘密分级) and the severity each one carries by default."""

from __future__ import annotations

LEVELS: tuple[str, ...] = ("core", "important", "general", "internal")

LEVEL_LABELS: dict[str, tuple[str, str]] = {
    "core": ("核心商业秘密", "core trade secret"),
    "important": ("重要商业秘密", "important trade secret"),
    "general": ("一般商业秘密", "general trade secret"),
    "internal": ("内部资料", "internal"),
}

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")

_SEVERITY_BY_LEVEL = {"core": "critical", "important": "high", "general": "medium", "internal": "low"}


def severity_for_level(level: str | None) -> str:
    """The classified-egress severity for a level; info when the content is not classified."""
    return _SEVERITY_BY_LEVEL.get(level or "", "info")
