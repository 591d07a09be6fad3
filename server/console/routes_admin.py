"""Rules (view, enable/disable, upload a file), users, API tokens and the audit log (channels: routes_channels.py)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from loguru import logger

from server import triage
from server.auth import ROLES
from server.console import queries, routes_audit
from server.console.rulefiles import locate, set_enabled
from server.console.sessions import ConsoleUser, hash_password
from server.console.web import PREFIX, Console, back, first
from server.policies import PACK_PREFIX, PolicyRefused

MIN_PASSWORD_CHARS = 12
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-")


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= 64 and set(name) <= NAME_CHARS


def _custom_files(policy) -> list[tuple[str, str]]:
    return [(n, t) for n, t in policy.sources if not n.startswith(PACK_PREFIX)]


def _forget_verified(request: Request, token_id: int) -> None:
    """Out of the auth guard's cache of recently verified tokens at once (server/authguard.py)."""
    from sqlalchemy import select

    from server.schema import api_tokens

    budget = getattr(request.app.state, "auth_budget", None)
    if budget is None:
        return
    with request.app.state.store.engine.connect() as conn:
        stored = conn.execute(select(api_tokens.c.token_hash).where(api_tokens.c.id == token_id)).scalar()
    if stored:
        budget.forget(bytes.fromhex(stored))


def register(router: APIRouter, console: Console) -> None:
    def rules_view(request: Request, user: ConsoleUser, status_code: int = 200, **extra) -> Response:
        policy = request.app.state.store.policies.active()
        rules = [("event", r) for r in policy.ruleset.event_rules] + [("correlation", r) for r in policy.ruleset.correlation_rules]
        context = {"upload_name": "", "upload_text": "", "errors": [], "error_lines": {}, "other_errors": [], "warnings": []}
        context.update(extra)
        return console.render(
            request, "rules.html", user, status_code, policy=policy, rules=rules, custom=_custom_files(policy),
            history=request.app.state.store.policies.history(20), pack_prefix=PACK_PREFIX, **context,
        )

    def propose(request: Request, user: ConsoleUser, files: list[tuple[str, str]], upload_name: str = "", upload_text: str = "") -> Response:
        store, config = request.app.state.store, request.app.state.config
        try:
            proposal = store.policies.propose(files, config.working_time, f"console:{user.name}")
        except PolicyRefused as refused:
            located = locate(refused.errors)
            mine = [e for e in located if e.file == upload_name and e.line > 0]
            lines: dict[int, list[str]] = {}
            for e in mine:
                lines.setdefault(e.line, []).append(e.message)
            logger.warning("rule set refused by=console:{!r} errors={}", user.name, len(refused.errors))
            return rules_view(
                request, user, 422, upload_name=upload_name, upload_text=upload_text, errors=refused.errors, error_lines=lines,
                other_errors=[e for e in located if e not in mine],
            )
        if proposal.changed:
            logger.info("policy activated version={} files={} by=console:{!r}", proposal.version, len(files), user.name)
        if proposal.warnings:
            return rules_view(request, user, warnings=proposal.warnings)
        return back("/rules", msg="policy" if proposal.changed else "unchanged")

    @router.get(PREFIX + "/rules", include_in_schema=False)
    def rules_page(request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        return rules_view(request, user)

    @router.post(PREFIX + "/rules/upload", include_in_schema=False)
    def upload(request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)) -> Response:
        name, text = first(fields, "name").strip(), first(fields, "text").replace("\r\n", "\n")
        if not name.endswith((".yaml", ".yml")) or "/" in name or "\\" in name or len(name) > 128:
            raise HTTPException(422, "the file name ends in .yaml or .yml and has no folder in it")
        files = [(n, t) for n, t in _custom_files(request.app.state.store.policies.active()) if n != name]
        if first(fields, "remove") != "1":
            files.append((name, text))
        return propose(request, user, files, name, text)

    def switch(request: Request, user: ConsoleUser, change, what: str) -> Response:
        """Change the policy's list of switched-off rules (shipped rules, and any rule switched off that way)."""
        try:
            proposal = request.app.state.store.policies.set_disabled(change, f"console:{user.name}")
        except PolicyRefused as refused:  # e.g. a correlation rule that stays on counts this one
            logger.warning("rule switch refused what={} by=console:{!r} errors={}", what, user.name, len(refused.errors))
            return rules_view(request, user, 409, errors=refused.errors, other_errors=locate(refused.errors))
        if proposal.changed:
            logger.info("rules switched what={} version={} by=console:{!r}", what, proposal.version, user.name)
        return back("/rules", msg="policy" if proposal.changed else "unchanged")

    @router.post(PREFIX + "/rules/{rule_id}/toggle", include_in_schema=False)
    def toggle(rule_id: str, request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)) -> Response:
        """A rule in the policy's switched-off list goes back on; a shipped rule is switched off
        through that list; an uploaded rule is switched off or on in its own file."""
        policy = request.app.state.store.policies.active()
        rule = policy.ruleset.event_rule(rule_id) or policy.ruleset.correlation_rule(rule_id)
        if rule is None or rule.where is None:
            raise HTTPException(404, "no such rule")
        if rule_id in policy.disabled:
            return switch(request, user, lambda current: [r for r in current if r != rule_id], f"enable:{rule_id}")
        if rule.where.file.startswith(PACK_PREFIX):
            return switch(request, user, lambda current: sorted({*current, rule_id}), f"disable:{rule_id}")
        files = []
        for name, text in _custom_files(policy):
            if name == rule.where.file:
                text = set_enabled(text, rule.where.line, rule.where.col, not rule.enabled)
            files.append((name, text))
        return propose(request, user, files)

    @router.get(PREFIX + "/users", include_in_schema=False)
    def users_page(request: Request, user: ConsoleUser = Depends(console.admin)) -> Response:
        with request.app.state.store.engine.connect() as conn:
            rows = queries.user_list(conn)
        return console.render(request, "users.html", user, users=rows, roles=ROLES, min_chars=MIN_PASSWORD_CHARS, error=None)

    @router.post(PREFIX + "/users", include_in_schema=False)
    def create_user(request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)) -> Response:
        name, role, password = first(fields, "name").strip(), first(fields, "role"), first(fields, "password")
        store = request.app.state.store
        error = None
        if not _valid_name(name):
            error = "bad_name"
        elif role not in ROLES:
            error = "bad_role"
        elif len(password) < MIN_PASSWORD_CHARS:
            error = "short_password"
        elif store.user_exists(name):
            error = "user_exists"
        if error:
            with store.engine.connect() as conn:
                rows = queries.user_list(conn)
            return console.render(request, "users.html", user, 422, users=rows, roles=ROLES, min_chars=MIN_PASSWORD_CHARS, error=error)
        store.create_user(name, role, hash_password(password), f"console:{user.name}")  # in the threadpool
        logger.info("console user created name={!r} role={} by=console:{!r}", name, role, user.name)
        return back("/users", msg="user_created")

    @router.post(PREFIX + "/users/{user_id}/remove", include_in_schema=False)
    def delete_user(user_id: int, request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)) -> Response:
        try:
            removed = 0 < user_id < 2**63 and request.app.state.store.remove_user(user_id, f"console:{user.name}")
        except ValueError:  # the last admin
            return back("/users", msg="last_admin")
        if removed:
            logger.info("console user removed id={} by=console:{!r}", user_id, user.name)
        return back("/users", msg="user_removed" if removed else "not_found")

    @router.post(PREFIX + "/users/{user_id}/email", include_in_schema=False)
    def user_email(user_id: int, request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)) -> Response:
        """Where the user's assignments are notified (server/triage.py); empty clears it."""
        store = request.app.state.store
        try:
            done = 0 < user_id < 2**63 and triage.set_email(store.engine, user_id, first(fields, "email").strip(), f"console:{user.name}", store.clock())
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return back("/users", msg="email_saved" if done else "not_found")

    @router.get(PREFIX + "/tokens", include_in_schema=False)
    def tokens_page(request: Request, user: ConsoleUser = Depends(console.admin)) -> Response:
        with request.app.state.store.engine.connect() as conn:
            rows = queries.token_list(conn)
        return console.render(request, "tokens.html", user, tokens=rows, roles=ROLES, new_token=None, new_name=None)

    @router.post(PREFIX + "/tokens", include_in_schema=False)
    def create_token(request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)) -> Response:
        from server.auth import API_TOKEN_PREFIX, new_token

        name = first(fields, "name").strip()
        if not _valid_name(name):
            raise HTTPException(422, "a token name is 1-64 letters, digits, '.', '_', '@' or '-'")
        role = first(fields, "role") or "analyst"
        if role not in ROLES:
            raise HTTPException(422, f"a token's role is one of {', '.join(ROLES)}")
        store = request.app.state.store
        token = new_token(API_TOKEN_PREFIX)
        store.create_api_token(name, token, f"console:{user.name}", role)
        logger.info("api token created name={!r} role={} by=console:{!r}", name, role, user.name)
        with store.engine.connect() as conn:
            rows = queries.token_list(conn)
        # shown once, in this answer only: the database keeps its SHA-256
        return console.render(request, "tokens.html", user, tokens=rows, roles=ROLES, new_token=token, new_name=name)

    @router.post(PREFIX + "/tokens/{token_id}/revoke", include_in_schema=False)
    def revoke(token_id: int, request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)) -> Response:
        store = request.app.state.store
        done = 0 < token_id < 2**63 and store.revoke_api_token(token_id, f"console:{user.name}")
        if done:
            _forget_verified(request, token_id)
            logger.info("api token revoked id={} by=console:{!r}", token_id, user.name)
        return back("/tokens", msg="token_revoked" if done else "not_found")

    routes_audit.register(router, console)  # the audit log page and its export
