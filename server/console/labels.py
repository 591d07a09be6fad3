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
    "view_saved": N_("The view was saved."),
    "view_deleted": N_("The view was deleted."),
    "email_saved": N_("The e-mail address was saved."),
    "channel_saved": N_("The channel was saved."),
    "channel_enabled": N_("The channel was enabled."),
    "channel_disabled": N_("The channel was disabled: its pending messages will not be sent."),
    "channel_deleted": N_("The channel was deleted."),
}
EVENT_TYPE = {  # rules/events.py EVENT_TYPES, as a column shows them
    "file.created": N_("File created"),
    "file.modified": N_("File changed"),
    "file.moved": N_("File moved"),
    "file.deleted": N_("File deleted"),
    "file.opened": N_("File opened"),
    "classified.read": N_("Read by a network application"),
    "egress.file": N_("File leaving"),
    "media.mounted": N_("Media mounted"),
    "media.unmounted": N_("Media unmounted"),
    "agent.started": N_("Agent started"),
    "agent.stopped": N_("Agent stopped"),
    "agent.error": N_("Agent error"),
    "agent.overflow": N_("Events lost, rescan"),
    "agent.gap": N_("Gap in the event chain"),
    "agent.tamper": N_("Agent tampered with"),
    "agent.clock_skew": N_("Agent clock off"),
    "agent.limit": N_("Agent over its limits"),
    "agent.stalled": N_("Agent pipeline stalled"),
}
ACTOR = {  # who did something when no person did (audit log, alert history, policies)
    "system": N_("System"),
    "unattributed": N_("Unattributed"),
    "startup": N_("Server start"),
    "cli": N_("Command line"),
}
EGRESS_KIND = {  # rules/fields.py EGRESS_KINDS
    "removable": N_("removable media"),
    "folder": N_("egress folder"),
    "sync": N_("cloud-drive folder"),
    "share": N_("network share"),
    "im": N_("IM client folder"),
    "phone": N_("mobile phone"),
    "printer": N_("printing"),
}
MATCH = {"exact": N_("exact copy"), "archive": N_("inside an archive"), "partial": N_("edited copy")}
GROUP = {"default": N_("Default group")}  # the group the first migration made
REGISTER = {  # the central register's fixed values (server/register.py), stored in Chinese
    "技术信息": N_("Technical information"),
    "经营信息": N_("Business information"),
    "长期": N_("Indefinite"),
    "公布前": N_("Until published"),
}
AUDIT_ACTION = {  # audit_log actions (server/audit.py and the routes that write them)
    "login.ok": N_("Signed in"),
    "login.failed": N_("Sign-in refused"),
    "token.create": N_("Token created"),
    "token.revoke": N_("Token revoked"),
    "user.create": N_("User created"),
    "user.remove": N_("User removed"),
    "policy.activate": N_("Rule set activated"),
    "login.locked": N_("Sign-ins locked"),
    "user.email": N_("E-mail address set"),
    "policy.rule_enabled": N_("Rule switched on"),
    "policy.rule_disabled": N_("Rule switched off"),
    "alert.status": N_("Alert status changed"),
    "alert.comment": N_("Alert commented"),
    "alert.reopened": N_("Alert reopened"),
    "alert.assigned": N_("Alert assigned"),
    "alert.delete": N_("Alert deleted"),
    "device.allow": N_("Device allowed"),
    "device.disallow": N_("Device allow-list entry removed"),
    "watchlist.add": N_("Added to a watchlist"),
    "watchlist.remove": N_("Removed from a watchlist"),
    "watchlist.replace": N_("Watchlist replaced"),
    "watchlist.update": N_("Watchlist changed"),
    "register.import": N_("Register imported"),
    "export.register_items": N_("Register exported"),
    "export.evidence": N_("Evidence pack exported"),
    "export.assessor": N_("Assessor's report exported"),
    "export.alerts": N_("Alerts exported"),
    "export.events": N_("Events exported"),
    "export.devices": N_("Devices exported"),
    "export.agents": N_("Agents exported"),
    "export.audit": N_("Audit log exported"),
    "host.block": N_("Host blocked"),
    "host.unblock": N_("Host unblocked"),
    "group.create": N_("Group created"),
    "group.change": N_("Group changed"),
    "group.delete": N_("Group deleted"),
    "enroll_key.create": N_("Enrolment key created"),
    "enroll_key.revoke": N_("Enrolment key revoked"),
    "agent.retire": N_("Agent retired"),
    "agent.approve": N_("Agent approved"),
}
LABELS = {"severity": SEVERITY, "status": STATUS, "category": CATEGORY, "level": LEVEL, "role": ROLE, "msg": MESSAGES, "audit": AUDIT_COLUMN,
          "event": EVENT_TYPE, "actor": ACTOR, "egress": EGRESS_KIND, "match": MATCH, "group": GROUP, "register": REGISTER,
          "action": AUDIT_ACTION}  # fmt: skip


def label(kind: str, value: str | None) -> str:
    """The English msgid for a value, or the value itself when it has no word (a custom category)."""
    if value is None:
        return ""
    return LABELS[kind].get(value, value)
