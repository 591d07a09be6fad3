"""The `agent.egress.user_mounts:` section: phones and network shares mounted in user space
(gvfs, jmtpfs, simple-mtpfs), walked as their owner since inotify does not see into them
(agent/usermounts.py): how often, and within what budget per walk."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from rules.schema import MISSING, Context, Section, boolean, integer, number


@dataclass(frozen=True)
class UserMountsConfig:
    enabled: bool = True
    walk_s: float = 5.0  # each mounted phone or share is walked this often (and at once when it appears)
    max_entries: int = 20_000  # entries (files and folders) one walk looks at; the next walk goes on from there
    max_walk_s: float = 2.0  # one walk's time budget (an MTP listing is slow): the next goes on from there
    settle_s: float = 2.0  # a file changed this recently is looked at again before it is read (a copy in progress)


def parse_user_mounts(node: yaml.Node, key_path: str, ctx: Context):
    section = Section(node, key_path, ctx)
    if not section.valid:
        return MISSING
    defaults = UserMountsConfig()
    values = dict(
        enabled=section.get("enabled", boolean, default=defaults.enabled),
        walk_s=section.get("walk_s", number(minimum=0.5, maximum=3600), default=defaults.walk_s),
        max_entries=section.get("max_entries", integer(100, 10_000_000), default=defaults.max_entries),
        max_walk_s=section.get("max_walk_s", number(minimum=0.1, maximum=600), default=defaults.max_walk_s),
        settle_s=section.get("settle_s", number(minimum=0, maximum=600), default=defaults.settle_s),
    )
    section.done()
    if MISSING in values.values():
        return MISSING
    return UserMountsConfig(**values)
