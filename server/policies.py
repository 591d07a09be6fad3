"""The policy in force: the shipped packs, the firm's own rule files and the working time.

The collector is the source of truth for rules. Policies are kept append-only in `policies`; the
newest row is the active one, so every collector sharing the database agrees on it. A rule set
that does not load is refused whole with its located errors, and the active one stays.
Each process builds the active policy once per version and reads only its id on each use.

Each row also keeps the rule ids switched off in it (`disabled`; NULL in rows from before
revision 0008). Uploading files or restarting keeps the list; changing it is a new version, audited
as policy.rule_disabled / policy.rule_enabled. Every change is made against the version it started
from: when another collector or request activated a policy in between, the change is rebuilt on
top of that one, so no upload or switch is silently undone.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from loguru import logger
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from rules.errors import InvalidInput
from rules.lint import lint
from rules.loader import default_pack_sources
from rules.policy import Policy, build_policy, check_disabled_syntax
from rules.worktime import WorkTime
from server import audit
from server.database import lock, writing
from server.schema import policies
from server.times import aware, iso

PACK_PREFIX = "packs/"
MAX_CUSTOM_FILES = 100
MAX_FILE_BYTES = 256 * 1024
MAX_TOTAL_BYTES = 2 * 1024 * 1024
CHANGE_ATTEMPTS = 5  # rebuilds when other changes keep landing first


@dataclass(frozen=True)
class Proposal:
    """What PUT /policy did: the version now active, lint warnings, whether anything changed."""

    version: str
    warnings: list[str]
    changed: bool


class PolicyRefused(Exception):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


class _Moved(Exception):
    """Another policy became active after the one a change was built on."""


class PolicyBook:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]):
        self.engine = engine
        self.clock = clock
        self._built: tuple[int, Policy] | None = None  # (row id, policy)
        self._fallback: Policy | None = None
        self._lock = threading.Lock()

    # --- reading ------------------------------------------------------------------------------

    def active(self, conn: Connection | None = None) -> Policy:
        """The active policy; with `conn`, as that transaction sees it."""
        if conn is None:
            with self.engine.connect() as conn:
                return self.active(conn)
        row_id = conn.execute(select(policies.c.id).order_by(policies.c.id.desc()).limit(1)).scalar()
        if row_id is None:
            return self._default()
        built = self._built
        if built is not None and built[0] == row_id:
            return built[1]
        row = conn.execute(select(policies).where(policies.c.id == row_id)).mappings().one()
        if built is not None and built[1].version == row["version"]:
            policy = built[1]
        else:
            try:
                policy = build_policy(_files(row["files"]), WorkTime.from_dict(json.loads(row["worktime"])), _disabled(row["disabled"]))
            except (InvalidInput, KeyError, ValueError) as exc:  # stored by a version whose loader differed
                logger.error("stored policy does not load; keeping the previous one id={} error={!r}", row_id, str(exc))
                return built[1] if built else self._default()
        with self._lock:
            self._built = (row_id, policy)
        return policy

    def history(self, limit: int) -> list[dict]:
        query = select(
            policies.c.id, policies.c.version, policies.c.created_at, policies.c.created_by, policies.c.files, policies.c.worktime, policies.c.disabled
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(policies.c.id.desc()).limit(limit)).mappings().all()
        return [
            {
                "id": r["id"],
                "version": r["version"],
                "active": i == 0,
                "created_at": iso(aware(r["created_at"])),
                "created_by": r["created_by"],
                "files": [name for name, _ in _files(r["files"]) if not name.startswith(PACK_PREFIX)],
                "packs": [name for name, _ in _files(r["files"]) if name.startswith(PACK_PREFIX)],
                "worktime": json.loads(r["worktime"]),
                "disabled": list(_disabled(r["disabled"])),
            }
            for i, r in enumerate(rows)
        ]

    # --- changing -----------------------------------------------------------------------------

    def propose(self, custom: list[tuple[str, str]], worktime: WorkTime, actor: str) -> Proposal:
        """Check the firm's rule files with the packs; activate them, or raise PolicyRefused."""
        problems = check_custom_files(custom)
        if problems:
            raise PolicyRefused(problems)
        policy, changed = self._change(lambda base: _build(custom, worktime, _still_there(custom, worktime, base.disabled)), actor)
        return Proposal(policy.version, [str(w) for w in lint(policy.ruleset)], changed)

    def set_disabled(self, change: Callable[[tuple[str, ...]], list[str] | tuple[str, ...]], actor: str) -> Proposal:
        """Switch rules off or on: `change` maps the active list to the wanted one.

        The files and working time in force stay; the list is checked against them (unknown ids,
        rules still counted by a correlation rule that stays on) and refused whole with
        PolicyRefused, errors located as `policy:0:0: disabled[i]: ...`.
        """

        def rebuild(base: Policy) -> Policy:
            wanted = change(base.disabled)
            problems = check_disabled_syntax(wanted)
            if problems:
                raise InvalidInput(problems)
            return build_policy(list(base.sources), base.worktime, tuple(wanted))

        policy, changed = self._change(rebuild, actor)
        return Proposal(policy.version, [str(w) for w in lint(policy.ruleset)], changed)

    def _change(self, make: Callable[[Policy], Policy], actor: str) -> tuple[Policy, bool]:
        """Build the new policy from the active one and activate it, unless another policy became
        active meanwhile: then build again from that one. Raises PolicyRefused when it does not load."""
        for attempt in range(CHANGE_ATTEMPTS):
            base = self.active()
            try:
                policy = make(base)
            except InvalidInput as exc:
                raise PolicyRefused([str(e) for e in exc.errors]) from None
            try:
                last = attempt == CHANGE_ATTEMPTS - 1
                return policy, self._activate(policy, actor, None if last else base.version)
            except _Moved:
                logger.info("the policy changed while a change was built on it; rebuilding base={}", base.version)
        raise AssertionError("unreachable: the last attempt does not check the base")

    def activate_at_startup(self, worktime: WorkTime, actor: str = "startup") -> Policy:
        """Packs of this version + the latest custom files + the configured working time.

        Upgrading the packs or changing the working hours takes effect at the next start. When the
        custom files no longer load with the new packs, the active policy stays and the errors are
        logged.
        """
        with self.engine.connect() as conn:
            current = conn.execute(select(policies.c.files, policies.c.disabled).order_by(policies.c.id.desc()).limit(1)).first()
        custom = [(n, t) for n, t in _files(current.files)] if current else []
        custom = [(n, t) for n, t in custom if not n.startswith(PACK_PREFIX)]
        disabled = _disabled(current.disabled) if current else ()
        try:
            policy = _build(custom, worktime, _still_there(custom, worktime, disabled))
        except InvalidInput as exc:
            logger.error(
                "this version's packs do not load with the custom rule files and the switched-off rules; the active policy stays "
                "(fix the files or the switched-off list, then restart) errors={!r}",
                str(exc),
            )
            return self.active()
        if self._activate(policy, actor):
            logger.info("policy activated version={} files={} by={}", policy.version, len(policy.sources), actor)
        return self.active()

    def _activate(self, policy: Policy, actor: str, based_on: str | None = None) -> bool:
        """Insert the policy as the newest row unless it is active already; with `based_on`,
        raise _Moved when the active version is no longer that one."""
        with writing(self.engine) as conn:
            lock(conn, {"policy"})
            row = conn.execute(select(policies.c.version, policies.c.disabled).order_by(policies.c.id.desc()).limit(1)).first()
            current, was_disabled = (row.version, _disabled(row.disabled)) if row else (None, ())
            if current == policy.version:
                return False
            if based_on is not None and current is not None and current != based_on:
                raise _Moved()
            row_id = conn.execute(
                insert(policies).values(
                    version=policy.version,
                    created_at=self.clock(),
                    created_by=actor,
                    files=json.dumps([{"name": n, "text": t} for n, t in policy.sources], ensure_ascii=False),
                    worktime=json.dumps(policy.worktime.to_dict()),
                    disabled=json.dumps(list(policy.disabled)) if policy.disabled else None,
                )
            ).inserted_primary_key[0]
            if actor != "startup":  # an administrative change (the packs of a new version at startup are not)
                now = self.clock()
                files = [n for n, _ in policy.sources if not n.startswith("packs/")]
                details = {"previous": current, "files": files, "disabled": list(policy.disabled)}
                audit.record(conn, now, actor, "policy.activate", f"policy:{policy.version}", details)
                for rule_id in sorted(set(policy.disabled) - set(was_disabled)):
                    audit.record(conn, now, actor, "policy.rule_disabled", f"rule:{rule_id}", {"version": policy.version, "previous": current})
                for rule_id in sorted(set(was_disabled) - set(policy.disabled)):
                    audit.record(conn, now, actor, "policy.rule_enabled", f"rule:{rule_id}", {"version": policy.version, "previous": current})
        with self._lock:
            self._built = (row_id, policy)
        return True

    def _default(self) -> Policy:
        """Before any policy was activated (a store used without the app): the packs alone."""
        if self._fallback is None:
            self._fallback = _build([], WorkTime())
        return self._fallback


def check_custom_files(files: list[tuple[str, str]]) -> list[str]:
    """Limits on the firm's own files; the rule loader checks their content."""
    problems = []
    if len(files) > MAX_CUSTOM_FILES:
        problems.append(f"at most {MAX_CUSTOM_FILES} rule files, got {len(files)}")
    seen: set[str] = set()
    total = 0
    for name, text_ in files:
        size = len(text_.encode("utf-8"))
        total += size
        if name.startswith(PACK_PREFIX):
            problems.append(f"{name}: names starting with '{PACK_PREFIX}' are reserved for the shipped packs")
        if name in seen:
            problems.append(f"{name}: two files have this name")
        if size > MAX_FILE_BYTES:
            problems.append(f"{name}: larger than {MAX_FILE_BYTES} bytes")
        seen.add(name)
    if total > MAX_TOTAL_BYTES:
        problems.append(f"the rule files are larger than {MAX_TOTAL_BYTES} bytes together")
    return problems


def _build(custom: list[tuple[str, str]], worktime: WorkTime, disabled: tuple[str, ...] = ()) -> Policy:
    return build_policy(default_pack_sources() + list(custom), worktime, disabled)


def _still_there(custom: list[tuple[str, str]], worktime: WorkTime, disabled: tuple[str, ...]) -> tuple[str, ...]:
    """The switched-off ids whose rules the new files still hold. A rule that is gone (a file
    removed, or a pack of a newer version without it) cannot stay switched off: it is dropped
    from the list, logged, and the activation's audit row shows it as switched on again."""
    if not disabled:
        return disabled
    known = set(_build(custom, worktime).ruleset.ids)  # raises InvalidInput as the real build would
    gone = [rule_id for rule_id in disabled if rule_id not in known]
    if gone:
        logger.warning("switched-off rules no longer exist; dropped from the list rules={}", ",".join(gone))
    return tuple(rule_id for rule_id in disabled if rule_id in known)


def _disabled(stored: str | None) -> tuple[str, ...]:
    return tuple(json.loads(stored)) if stored else ()


def _files(stored: str) -> list[tuple[str, str]]:
    return [(f["name"], f["text"]) for f in json.loads(stored)]
