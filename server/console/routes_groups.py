"""The console's groups page: agent groups (register items, extra egress places, settings, target
agent version, agent count) and the ordered placement rules, with the admin's forms.

Every change goes through server/groups.py's GroupBook, as the API's do, so it is checked and
audited in one place (group.create, group.change, group.delete, group.rules). A form the book
refuses renders the page again with its message and the admin's input kept; analysts read only
(console.admin answers 403 to their POSTs).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from loguru import logger
from sqlalchemy import select

from rules.grouppolicy import ALWAYS_ON_FILES, GROUP_EGRESS_KINDS, LIMITS, NOTIFY_SEVERITIES
from server import register as register_items
from server.console.sessions import ConsoleUser
from server.console.web import PREFIX, Console, back, first
from server.groups import OSES, GroupError
from server.schema import enroll_keys

GroupId = Path(ge=1, le=2**31 - 1)
GROUP_FIELDS = ("name", "description", "egress", "heartbeat_s", "agent_version", "notify_mode", *LIMITS)


def render_page(request: Request, user: ConsoleUser, console: Console, chosen_id: int | None = None,
                status_code: int = 200, error: str = "", draft: dict | None = None, rule_draft: dict | None = None) -> Response:  # fmt: skip
    store = request.app.state.store
    listing = store.groups.list()
    with store.engine.connect() as conn:
        items = register_items.list_items(conn, active_only=False)
        keys = {r.id: r.name for r in conn.execute(select(enroll_keys.c.id, enroll_keys.c.name))}
    groups = listing["groups"]
    chosen = next((g for g in groups if g["id"] == chosen_id), None)
    if draft is None and chosen is not None:
        draft = group_draft(chosen)
    return console.render(
        request, "groups.html", user, status_code=status_code, groups=groups, rules=listing["rules"], chosen=chosen,
        names={g["id"]: g["name"] for g in groups}, items=items, item_names={i.id: i.name for i in items}, keys=keys,
        error=error, draft=draft or {"notify_mode": "own", "rule_files": "all"}, rule_draft=rule_draft or {}, oses=OSES,
        kinds=GROUP_EGRESS_KINDS, severities=NOTIFY_SEVERITIES, limits=LIMITS, always_on=ALWAYS_ON_FILES,
        rule_files=[name for name, _ in store.policies.active().sources],
    )  # fmt: skip


def group_draft(group: dict) -> dict:
    """A group as its form shows it."""
    notify = group.get("notify_severities")
    return {
        "name": group["name"],
        "description": group["description"] or "",
        "item_ids": group["register_items"]
        if group["register_items"] == "all"
        else [str(i) for i in group["register_items"]],
        "egress": "\n".join(" | ".join(x for x in (p["path"], p["kind"], p["app"]) if x) for p in group["egress"]),
        "heartbeat_s": "" if group["heartbeat_s"] is None else f"{group['heartbeat_s']:g}",
        "agent_version": group["agent_version"] or "",
        "notify_mode": "own" if notify is None else "set",
        "severities": list(notify or []),
        "rule_files": "all" if group.get("rule_files") is None else list(group["rule_files"]),
        **{name: "" if group.get(name) is None else f"{group[name]:g}" for name in LIMITS},
    }


def parse_group_form(fields: dict[str, list[str]]) -> tuple[dict, dict, str]:
    """(the body for server/groups.py, the form as typed, what the form itself could not read)."""
    draft = {f: first(fields, f) for f in GROUP_FIELDS}
    chosen_items = fields.get("item", [])
    draft["item_ids"] = "all" if "all" in chosen_items else chosen_items
    draft["severities"] = [s for s in fields.get("severity", []) if s]
    chosen_files = [f for f in fields.get("rule_file", []) if f]
    draft["rule_files"] = "all" if "*" in chosen_files or not chosen_files else chosen_files  # none ticked: all
    body: dict = {
        "name": draft["name"],
        "description": draft["description"],
        "agent_version": draft["agent_version"].strip(),
    }
    if draft["item_ids"] == "all":
        body["register_items"] = "all"
    elif all(i.isascii() and i.isdigit() and 0 < len(i) <= 10 for i in chosen_items):
        body["register_items"] = [int(i) for i in chosen_items]
    else:
        return body, draft, "register_items: register item numbers"
    places = []
    for n, line in enumerate(draft["egress"].splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) > 3:
            return body, draft, f"egress line {n}: path | kind | app"
        place = {"path": parts[0], "kind": parts[1] if len(parts) > 1 and parts[1] else "folder"}
        if len(parts) == 3:
            place["app"] = parts[2]
        places.append(place)
    body["egress"] = places
    beat = draft["heartbeat_s"].strip()
    try:
        body["heartbeat_s"] = float(beat) if beat else None
    except ValueError:
        return body, draft, "heartbeat_s: a number of seconds, or empty for the agent's own"
    body["notify_severities"] = draft["severities"] if draft["notify_mode"] == "set" else None
    body["rule_files"] = None if draft["rule_files"] == "all" else draft["rule_files"]
    for name in LIMITS:
        typed = draft[name].strip()
        try:
            body[name] = float(typed) if typed else None
        except ValueError:
            return body, draft, f"{name}: a number, or empty for the agent's own"
    return body, draft, ""


def parse_rule_form(fields: dict[str, list[str]]) -> tuple[dict, dict, str]:
    """(a placement rule for server/groups.py, the form as typed, what the form could not read)."""
    draft = {f: first(fields, f).strip() for f in ("group_id", "hostname", "os", "enroll_key_id")}
    rule: dict = {"hostname": draft["hostname"] or "*"}
    for name in ("group_id", "enroll_key_id"):
        value = draft[name]
        if value:
            if not (value.isascii() and value.isdigit() and len(value) <= 10):
                return rule, draft, f"{name}: a number"
            rule[name] = int(value)
    if "group_id" not in rule:
        return rule, draft, "group_id: choose a group"
    if draft["os"]:
        rule["os"] = draft["os"]
    return rule, draft, ""


def _current_rules(request: Request) -> list[dict]:
    """The rules as server/groups.py takes them back (without the nulls it reports)."""
    return [{k: v for k, v in r.items() if v is not None} for r in request.app.state.store.groups.list()["rules"]]


def register(router: APIRouter, console: Console) -> None:
    @router.get(PREFIX + "/groups", include_in_schema=False)
    def groups_page(
        request: Request, group: int | None = Query(None, ge=1, le=2**31 - 1), user: ConsoleUser = Depends(console.user)
    ) -> Response:
        return render_page(request, user, console, group)

    @router.post(PREFIX + "/groups", include_in_schema=False)
    def create_group(
        request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)
    ) -> Response:
        body, draft, error = parse_group_form(fields)
        if error:
            return render_page(request, user, console, None, 422, error, draft)
        try:
            group = request.app.state.store.groups.create(body, f"console:{user.name}")
        except GroupError as exc:
            return render_page(request, user, console, None, 422 if exc.status == 400 else exc.status, str(exc), draft)
        logger.info("group created id={} name={!r} by=console:{!r}", group["id"], group["name"], user.name)
        return back("/groups", group=group["id"], msg="group_saved")

    @router.post(PREFIX + "/groups/rules", include_in_schema=False)
    def change_rules(
        request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)
    ) -> Response:
        """add (the rule form's rule, last), or remove / up / down the rule at `position`."""
        action, rules = first(fields, "action"), _current_rules(request)
        rule_draft: dict = {}
        if action == "add":
            rule, rule_draft, error = parse_rule_form(fields)
            if error:
                return render_page(request, user, console, None, 422, error, rule_draft=rule_draft)
            rules.append(rule)
        elif action in ("remove", "up", "down"):
            position = first(fields, "position")
            at = int(position) if position.isascii() and position.isdigit() and len(position) <= 6 else -1
            if not 0 <= at < len(rules):
                return back("/groups", msg="not_found")
            if action == "remove":
                del rules[at]
            else:
                other = at - 1 if action == "up" else at + 1
                if not 0 <= other < len(rules):
                    return back("/groups", msg="group_rules_saved")
                rules[at], rules[other] = rules[other], rules[at]
        else:
            raise HTTPException(422, "action is add, remove, up or down")
        try:
            request.app.state.store.groups.set_rules(rules, f"console:{user.name}")
        except GroupError as exc:
            return render_page(request, user, console, None, 422, str(exc), rule_draft=rule_draft)
        logger.info("placement rules changed action={} count={} by=console:{!r}", action, len(rules), user.name)
        return back("/groups", msg="group_rules_saved")

    @router.post(PREFIX + "/groups/{group_id}", include_in_schema=False)
    def change_group(
        request: Request,
        group_id: int = GroupId,
        user: ConsoleUser = Depends(console.admin),
        fields: dict = Depends(console.admin_form),
    ) -> Response:
        body, draft, error = parse_group_form(fields)
        if error:
            return render_page(request, user, console, group_id, 422, error, draft)
        try:
            request.app.state.store.groups.change(group_id, body, f"console:{user.name}")
        except GroupError as exc:
            if exc.status == 404:
                return back("/groups", msg="not_found")
            return render_page(
                request, user, console, group_id, 422 if exc.status == 400 else exc.status, str(exc), draft
            )
        logger.info("group changed id={} by=console:{!r}", group_id, user.name)
        return back("/groups", group=group_id, msg="group_saved")

    @router.post(PREFIX + "/groups/{group_id}/delete", include_in_schema=False)
    def delete_group(
        request: Request,
        group_id: int = GroupId,
        user: ConsoleUser = Depends(console.admin),
        fields: dict = Depends(console.admin_form),
    ) -> Response:
        try:
            request.app.state.store.groups.delete(group_id, f"console:{user.name}")
        except GroupError as exc:
            if exc.status == 404:
                return back("/groups", msg="not_found")
            return render_page(request, user, console, group_id, exc.status, str(exc))
        logger.info("group deleted id={} by=console:{!r}", group_id, user.name)
        return back("/groups", msg="group_deleted")
