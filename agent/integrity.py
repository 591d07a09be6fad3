"""The agent watches its own config and rule files: a local change is reported as agent.tamper.

Each file's SHA-256 is kept in the spool's state table, so a change made while the agent was not
running is reported at the next start, and one made while it runs within `check_s`. A file is
re-read only when its size, mtime, ctime or inode moved. The event says which file, its SHA-256
before and after (None: the file did not exist), and whether the agent was running; the new hashes
are stored in the same transaction as the event, so each change is reported once.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence

from loguru import logger

from agent.spool import Spool
from rules.events import Event

STATE_KEY = "watched_files"  # JSON {path: sha256 or null}
CHECK_S = 2.0


def rule_files(paths: Sequence[str]) -> list[str]:
    """The config's extra rule paths as files: a folder contributes its *.yaml and *.yml."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            try:
                files += sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith((".yaml", ".yml")))
            except OSError:
                continue
        else:
            files.append(path)
    return files


def file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def _signature(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class ConfigWatch:
    """Hash the agent's config and rule files at start and every `check_s`; report changes."""

    def __init__(
        self,
        spool: Spool,
        make_event: Callable[..., Event],
        config_path: str | None,
        rule_paths: Sequence[str],
        check_s: float = CHECK_S,
    ):
        self.spool = spool
        self.make_event = make_event
        self.config_path = os.path.abspath(config_path) if config_path else None
        self.rule_paths = [os.path.abspath(p) for p in rule_paths]
        self.check_s = check_s
        self._signatures: dict[str, tuple | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="config-watch", daemon=True)

    def files(self) -> list[str]:
        return ([self.config_path] if self.config_path else []) + rule_files(self.rule_paths)

    def start(self) -> None:
        """Compare with what the last run saw (changes while stopped), then watch."""
        self.check(running=False)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.check_s):
            try:
                self.check(running=True)
            except Exception:  # one failed check must not end the watch
                logger.exception("config watch check failed")

    def check(self, running: bool = True) -> int:
        """Report every watched file whose content changed; returns how many.

        The very first run only learns the files: there is nothing to compare with."""
        first_run = self.spool.get_state(STATE_KEY) is None
        known = self._known()
        current = dict(known)
        changes = []
        for path in sorted(set(self.files()) | set(known)):
            signature = _signature(path)
            if path in self._signatures and signature == self._signatures[path]:
                continue
            self._signatures[path] = signature
            sha = file_sha256(path) if signature is not None else None
            current[path] = sha
            if not first_run and sha != known.get(path):
                changes.append((path, known.get(path), sha))
        configured = set(self.files())
        current = {p: h for p, h in current.items() if h is not None or p in configured}
        events = [self._event(path, old, new, running) for path, old, new in changes]
        if events or current != known or first_run:
            self.spool.put(events, state={STATE_KEY: json.dumps(current, sort_keys=True)})
        for path, old, new in changes:
            logger.warning("agent file changed locally path={!r} old_sha256={} new_sha256={} while_running={}", path, old, new, running)
        return len(events)

    def _known(self) -> dict[str, str | None]:
        raw = self.spool.get_state(STATE_KEY)
        try:
            known = json.loads(raw) if raw else {}
        except ValueError:
            known = {}
        return {str(k): v for k, v in known.items()} if isinstance(known, dict) else {}

    def _event(self, path: str, old: str | None, new: str | None, running: bool) -> Event:
        kind = "config" if path == self.config_path else "rules"
        what = "changed" if old and new else "created" if new else "deleted"
        when = "while the agent ran" if running else "while the agent was not running"
        return self.make_event(
            "agent.tamper",
            path=path,
            sha256=new,
            error=f"the agent's {kind} file {path} was {what} locally {when}",
            details={"kind": "config_changed", "file": kind, "path": path, "old_sha256": old, "new_sha256": new, "while_running": running},
        )
