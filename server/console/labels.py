"""Words for the values the console shows: severities, statuses, categories, levels, roles.

The msgids are marked with N_ so Babel extracts them; templates translate them with label().
"""

from __future__ import annotations


def N_(text: str) -> str:  # noqa: N802 - the gettext convention for "mark for translation, translate later"
    return text


SEVERITY = {
    "critical": N_("Critical"),
    "high": N_("High"),
    "medium": N_("Medium"),
    "low": N_("Low"),
    "info": N_("Info"),
}
STATUS = {
    "open": N_("Open"),
    "acknowledged": N_("Acknowledged"),
    "resolved": N_("Resolved"),
    "false_positive": N_("False positive"),
}
CATEGORY = {
    "classified-egress": N_("Classified content leaving"),
    "marked-egress": N_("Marked document leaving"),
    "state-secret-marking": N_("State-secret marking found"),
    "personal-data-egress": N_("Personal data leaving"),
    "bulk-egress": N_("Bulk egress"),
    "mass-deletion": N_("Mass deletion"),
    "off-hours": N_("Off-hours access"),
    "unknown-device": N_("Unknown device"),
    "agent-offline": N_("Agent offline"),
    "agent-tamper": N_("Agent tampering"),
    "agent-health": N_("Agent health"),
    "uninspectable-egress": N_("Uninspectable file leaving"),
    "classified-read": N_("Classified file read by a network application"),
}
LEVEL = {
    "core": N_("Core trade secret"),
    "important": N_("Important trade secret"),
    "general": N_("General trade secret"),
    "internal": N_("Internal"),
}
ROLE = {"admin": N_("Administrator"), "analyst": N_("Analyst")}
AUDIT_COLUMN = {  # the audit_log table's columns (alert lifecycle), when it exists
    "id": N_("Number"),
    "at": N_("When"),
    "actor": N_("Who"),
    "action": N_("Action"),
    "target": N_("Target"),
    "details": N_("Details"),
}
MESSAGES = {  # what a redirect after a form reports (?msg=key): fixed texts, never echoed input
    "updated": N_("The alerts were updated."),
    "nothing": N_("Nothing was selected."),
    "allowed": N_("The device pattern is on the allow-list now."),
    "disallowed": N_("The allow-list entry was removed."),
    "exists": N_("This pattern is already on the allow-list."),
    "policy": N_("The new rule set is active."),
    "unchanged": N_("The rule set did not change."),
    "user_created": N_("The user was created."),
    "user_removed": N_("The user was removed."),
    "last_admin": N_("The last administrator cannot be removed."),
    "token_revoked": N_("The token was revoked."),
    "agent_approved": N_("The agent was approved: its token works now."),
    "agent_retired": N_("The agent was retired: its token is refused, its history kept."),
    "agents_retired": N_("The selected agents were retired: their tokens are refused, their history kept."),
    "agents_moved": N_("The selected agents were moved; placement rules leave them where they are now."),
    "agents_released": N_("The selected agents follow the placement rules again."),
    "not_found": N_("It no longer exists."),
    "register_saved": N_("The register item was saved; its history has a new entry."),
    "register_unchanged": N_("Nothing in the register item changed."),
    "register_declassified": N_("The register item was declassified; its history has a new entry."),
    "register_destroyed": N_("The register item was marked destroyed; its history has a new entry."),
    "register_imported": N_("The sheet was imported: every row was checked and applied."),
    "group_saved": N_("The group was saved; its agents get it with their next heartbeat."),
    "group_deleted": N_("The group was deleted."),
    "group_rules_saved": N_("The placement rules were saved; agents not moved by hand were placed again."),
}
LABELS = {"severity": SEVERITY, "status": STATUS, "category": CATEGORY, "level": LEVEL, "role": ROLE, "msg": MESSAGES, "audit": AUDIT_COLUMN}


def label(kind: str, value: str | None) -> str:
    """The English msgid for a value, or the value itself when it has no word (a custom category)."""
    if value is None:
        return ""
    return LABELS[kind].get(value, value)
