"""Words a page shows that come from the rules and the stored alerts, in the viewer's language.

Alerts keep the English title of their rule and an explanation in both languages (rules/explain.py
`bilingual`); the page picks the viewer's at display time: the rule's `title_zh` from the active
policy (the stored title when the rule is gone), the explanation's part in that language.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from loguru import logger

from rules.explain import in_language, place_zh
from server.console.validation import say_rule_error, sayer


def page_words(request: Request, lang: str) -> dict[str, Callable[..., Any]]:
    """The template functions rule_title(alert), rule_text(rule), explanation(text) and say(message)."""
    rules: dict[str, Any] | None = None

    def by_id() -> dict[str, Any]:
        nonlocal rules
        if rules is None:
            try:
                ruleset = request.app.state.store.policies.active().ruleset
                every = (*ruleset.event_rules, *ruleset.correlation_rules)
                rules = {**{f"title:{r.title}": r for r in every}, **{r.id: r for r in every}}
            except Exception as exc:  # no policy to read: the stored titles stand
                logger.warning("rule titles unavailable error={}: {!r}", type(exc).__name__, str(exc))
                rules = {}
        return rules

    def rule_title(alert: Any, stored: str | None = None) -> str:
        """An alert's title in `lang`: from an alert (a mapping or a row) or a rule id and its stored
        title; by the stored English title when the row has no rule id; the stored one when the rule is gone."""
        if isinstance(alert, str) or alert is None:
            rule_id = alert
        else:
            rule_id, stored = _field(alert, "rule_id"), _field(alert, "title")
        rules = by_id()
        rule = rules.get(rule_id or "") or rules.get(f"title:{stored}")
        return rule.title_in(lang) if rule is not None else stored or ""

    def rule_text(rule: Any, what: str = "title") -> str:
        return rule.title_in(lang) if what == "title" else rule.description_in(lang)

    return {
        "rule_title": rule_title,
        "rule_text": rule_text,
        "explanation": lambda text: in_language(text or "", lang),
        "say": sayer(lang),  # a validation message in `lang` (server/console/validation.py)
        "say_rule": lambda message: say_rule_error(str(message), lang),  # a rule file's error in `lang`
        "place": lambda text: place_zh(text) if lang == "zh" and text else text or "",  # an incident's destination
    }


def _field(row: Any, name: str) -> Any:
    try:
        return row[name]
    except (KeyError, IndexError, TypeError):
        return getattr(row, name, None)
