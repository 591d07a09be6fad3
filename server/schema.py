"""The collector's tables (SQLAlchemy Core). Alembic migrations in migrations/ create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# BigInteger ids that are still SQLite rowids (autoincrement) there
BigId = BigInteger().with_variant(Integer, "sqlite")

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(36), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("enrolled_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True)),
    Column("version", String(64)),
    Column("policy_version", String(64)),
    Column("spool_depth", Integer),
    Column("status", Text),  # the last heartbeat's extra fields, JSON
    Column("stopped_at", DateTime(timezone=True)),  # an agent.stopped (clean) came after the last heartbeat (0007)
    # the last heartbeat's pipeline progress (0010): when its worker last finished a step, on the
    # collector's clock, and how much waited for it; the agent.stalled event of a stall not over yet
    Column("pipeline_stepped_at", DateTime(timezone=True)),
    Column("pipeline_queued", Integer),
    Column("pipeline_stall_event", String(36)),
    # who may use it (0011): active | pending (waits for an admin's approval) | retired (token refused, history kept)
    Column("state", String(16), nullable=False, server_default="active"),
    Column("approved_at", DateTime(timezone=True)),
    Column("retired_at", DateTime(timezone=True)),
    Column("enrolled_from", String(64)),  # the address that enrolled it
    Column("enroll_key_id", Integer),  # the group enrolment key it used; NULL: the shared secret
    Column("claimed_host", String(255)),  # the last other host name its events or heartbeats named
    # its group (0013): NULL is the default group; group_manual: moved by an admin, rules leave it
    Column("group_id", Integer),
    Column("group_manual", Boolean, nullable=False, server_default=false()),
    Column("os", String(16)),  # linux | windows | macos, as the agent reports it
    Index("agents_hostname", "hostname"),  # the fleet page's default sort (0014)
    Index("agents_last_seen", "last_seen"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("role", String(16), nullable=False, server_default="admin"),  # admin | analyst (0009)
)

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("email", String(255)),  # where assignments are notified (0015)
)

events = Table(
    "events",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("ts", String(32), nullable=False),  # ISO 8601 UTC with ms and Z: sorts as text
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("agent_id", String(36), nullable=False),
    Column("host", String(255)),
    Column("user", String(255)),
    Column("path", Text),
    Column("size", BigInteger),
    Column("sha256", String(64)),
    Column("level", String(16)),
    Column("source_path", Text),
    Column("severity", String(16)),
    Column("body", Text, nullable=False),  # the whole event as JSON
    Column("agent_seq", BigInteger),  # the event's seq in its agent's chain (revision 0004)
    Column("chain_hash", String(64)),  # rules.events.chain_digest of the body
    Column("prev_hash", String(64)),  # what the event says the digest of the one before is
    Column("claimed_host", String(255)),  # the body's host when it is not the agent's enrolled one (0011)
    Index("events_type_seq", "type", "seq"),
    Index("events_agent_seq", "agent_id", "seq"),
    Index("events_agent_chain", "agent_id", "agent_seq"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("rule_id", String(128), nullable=False),
    Column("category", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("agent_id", String(36)),
    Column("host", String(255)),
    Column("user", String(255)),
    Column("count", Integer, nullable=False),
    Column("explanation", Text, nullable=False),
    Column("group_key", String(64)),  # event rules: SHA-256 of the rule's dedup group (0007)
    Column("last_seen", DateTime(timezone=True)),  # when the latest repeat folded into this alert arrived
    Column("first_ts", String(32)),  # event times (ISO, sorts as text) of its first and latest match:
    Column("last_ts", String(32)),  # the dedup window is judged on these, not on arrival
    Column("closed_at", DateTime(timezone=True)),  # when it was last resolved or marked false_positive
    Column("suppressed", Integer, nullable=False, server_default="0"),  # repeats the rule's suppress window swallowed
    # incidents (0015): one user's egress to one destination within a session window (server/incidents.py)
    Column("assignee", String(255)),  # the analyst working it
    Column("kind", String(16), nullable=False, server_default="alert"),  # alert | incident
    Column("destination", String(255)),  # a readable label of where the files went
    Column("place_kind", String(16)),  # removable | phone | printer | sync | im | share | folder
    Column("app", String(128)),
    Column("device_label", String(255)),
    Column("device_vendor", String(255)),
    Column("file_count", Integer, nullable=False, server_default="0"),
    Column("total_bytes", BigInteger, nullable=False, server_default="0"),
    Column("top_level", String(16)),  # the highest level of its files
    Column("first_file", Text),  # the first file's name
    Column("register_item", String(255)),
    Column("facets", Text),  # JSON list of the categories seen
    Index("alerts_status_id", "status", "id"),
    Index("alerts_group", "group_key", "id"),  # group_key hashes the rule id too
    Index("alerts_assignee", "assignee"),
    Index("alerts_user", "user"),  # created_at: alerts_created (0006, server/console/tables.py)
)

incident_files = Table(  # an incident's files in arrival order; detections on one file are its facets
    "incident_files",
    metadata,
    Column("alert_id", BigId, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),  # 1, 2, ... within the incident
    Column("event_id", String(36)),
    Column("at", DateTime(timezone=True)),  # the event's time
    Column("path", Text),
    Column("name", Text),
    Column("size", BigInteger),
    Column("sha256", String(64)),
    Column("level", String(16)),
    Column("register_item", String(255)),
    Column("source", Text),  # where it was copied from, when known
    Column("match", Text),  # how it matched (the explanation's reason)
    Column("facets", Text),  # JSON list of {"category", "rule_id", "severity", ...}
    Index("incident_files_event", "alert_id", "event_id"),
)

saved_views = Table(  # an analyst's named alert list filters (0015)
    "saved_views",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("owner", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("query", Text, nullable=False),  # the list's query string
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("owner", "name", name="saved_views_owner_name"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("alert_id", BigId, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Index("alert_events_event", "event_id"),
)

alert_history = Table(  # append-only: what happened to an alert, who did it, when and why
    "alert_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("alert_id", BigId, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # the status after the entry (to_status)
    Column("comment", Text, nullable=False),
    # created | repeated | status | comment | escalated | auto_resolved | reopened (revision 0007)
    Column("action", String(16), nullable=False, server_default="status"),
    Column("from_status", String(16)),
    Index("alert_history_alert", "alert_id", "id"),
)


# --- rules: policies, watchlists, correlation state (revision 0002) ------------------------------

policies = Table(  # append-only: every activation is a row; the newest row is the active policy
    "policies",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("version", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("files", Text, nullable=False),  # JSON [{"name", "text"}], the packs included: rebuilds exactly
    Column("worktime", Text, nullable=False),  # JSON, WorkTime.to_dict()
    Column("disabled", Text),  # JSON list of switched-off rule ids (revision 0008); NULL: none
)

watchlists = Table(
    "watchlists",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

watchlist_members = Table(
    "watchlist_members",
    metadata,
    Column("watchlist", String(64), ForeignKey("watchlists.name", ondelete="CASCADE"), primary_key=True),
    Column("value_key", String(255), primary_key=True),  # the value in lower case: lookups ignore case
    Column("value", String(255), nullable=False),  # as the officer wrote it
    Column("note", Text, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Column("added_by", String(255), nullable=False),
)

rule_hits = Table(  # events that matched a rule a correlation rule counts, while they can still matter
    "rule_hits",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("rule_id", String(128), nullable=False),  # the correlation rule
    Column("group_key", String(64), nullable=False),  # SHA-256 of the group_by values
    Column("step", Integer, nullable=False),  # a sequence's step (from 0); 0 for counting rules
    Column("event_id", String(36), nullable=False),
    Column("ts", String(32), nullable=False),  # the event's time, ISO 8601 UTC: sorts as text
    Column("facts", Text, nullable=False),  # JSON: what the explanation and the thresholds need
    Column("alert_id", BigId),  # the alert whose burst this hit is part of
    UniqueConstraint("rule_id", "event_id", "step", name="rule_hits_once"),
    Index("rule_hits_group_ts", "rule_id", "group_key", "ts"),
    Index("rule_hits_alert", "alert_id"),
)

correlation_state = Table(  # per correlation rule and group: the alert of the current burst
    "correlation_state",
    metadata,
    Column("rule_id", String(128), primary_key=True),
    Column("group_key", String(64), primary_key=True),
    Column("group_values", Text, nullable=False),  # JSON {field: value}
    Column("alert_id", BigId, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("first_ts", String(32), nullable=False),
    Column("last_ts", String(32), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

agent_silences = Table(  # one row per absence rule, agent and silence: its alert is raised once
    "agent_silences",
    metadata,
    Column("rule_id", String(128), primary_key=True),
    Column("agent_id", String(36), primary_key=True),
    Column("silent_since", String(32), primary_key=True),  # the last heartbeat before the silence, ISO
    Column("alert_id", BigId),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("escalations", Integer, nullable=False, server_default="0"),  # how many steps it went up (0007)
    Column("ended_at", DateTime(timezone=True)),  # the heartbeat that ended it
)


# --- the device register (revision 0003) -----------------------------------------------------------

devices = Table(  # removable media any agent mounted, one row per identity (vendor_id:product_id:serial)
    "devices",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 of the identity: serials are long
    Column("identity", Text, nullable=False),  # vendor_id:product_id:serial in lower case
    Column("vendor_id", String(64), nullable=False),
    Column("product_id", String(64), nullable=False),
    Column("serial", String(1024), nullable=False),
    Column("vendor", String(1024), nullable=False),  # the names and file system as last seen
    Column("model", String(1024), nullable=False),
    Column("bus", String(64), nullable=False),
    Column("fstype", String(64), nullable=False),
    Column("label", String(1024), nullable=False),
    Column("first_seen", String(32), nullable=False),  # event times, ISO 8601 UTC: sorts as text
    Column("last_seen", String(32), nullable=False),
    Column("last_agent_id", String(36), nullable=False),
    Column("last_host", String(255), nullable=False),
    Column("last_user", String(255), nullable=False),
    Column("times_seen", Integer, nullable=False),
    Index("devices_last_seen", "last_seen"),
)

device_allow = Table(  # the allow-list: patterns vendor:product:serial with * and ?
    "device_allow",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("pattern", String(1200), nullable=False, unique=True),  # in lower case
    Column("owner", String(255), nullable=False),
    Column("note", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True)),  # from then on the entry allows nothing
    Column("created_by", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


# --- tamper evidence (revision 0004) ------------------------------------------------------------------

agent_chains = Table(  # per agent id: how far its chain has been judged, and whether skew was reported
    "agent_chains",
    metadata,
    Column("agent_id", String(36), primary_key=True),
    Column("low_seq", BigInteger),  # the lowest seq received: the chain is judged from there
    Column("judged_through", BigInteger),  # every seq up to here was judged (gaps raised)
    Column("skew_reported_at", DateTime(timezone=True)),  # clock skew is reported once per agent
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

chain_gaps = Table(  # holes the agent explained itself (agent.gap: refused or dropped events)
    "chain_gaps",
    metadata,
    Column("agent_id", String(36), primary_key=True),
    Column("event_id", String(36), primary_key=True),  # the agent.gap event
    Column("seq_from", BigInteger, nullable=False),
    Column("seq_to", BigInteger, nullable=False),
)

chain_incidents = Table(  # one row per incident found, so each is raised once
    "chain_incidents",
    metadata,
    Column("agent_id", String(36), primary_key=True),
    Column("kind", String(32), primary_key=True),  # chain_gap | chain_break | seq_reused | clock_skew
    Column("seq", BigInteger, primary_key=True),  # where (0 for clock skew)
    Column("event_id", String(36), nullable=False),  # the event the collector made to report it
    Column("raised_at", DateTime(timezone=True), nullable=False),
)


# --- who may enrol (revision 0011) ------------------------------------------------------------------

blocked_hosts = Table(  # host names that enrol again only with an admin's approval
    "blocked_hosts",
    metadata,
    Column("hostname", String(255), primary_key=True),  # case-folded
    Column("blocked_at", DateTime(timezone=True), nullable=False),
    Column("blocked_by", String(255), nullable=False),
    Column("note", String(1000), nullable=False, server_default=""),
)

enroll_keys = Table(  # per-group enrolment keys: SHA-256 of the key, with an expiry
    "enroll_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("created_by", String(255), nullable=False),
)


# --- the central secret register (revision 0012; server/register.py) -----------------------------

register_items = Table(  # one row per secret item; never deleted (a destroyed item keeps its row)
    "register_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("level", String(16), nullable=False),  # core | important | general | internal
    Column("category", String(16), nullable=False),  # 技术信息 | 经营信息
    Column("owner_department", String(200), nullable=False, server_default=""),
    Column("owner_person", String(100), nullable=False, server_default=""),
    Column("scope", Text, nullable=False, server_default=""),  # 知悉范围
    Column("period", String(16), nullable=False),  # YYYY-MM-DD | 长期 | 公布前
    Column("locations", Text, nullable=False, server_default="[]"),  # JSON [{"os": ..., "pattern": ...}]
    Column("state", String(16), nullable=False, server_default="active"),  # active | declassified | destroyed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("register_items_state", "state"),
)

register_history = Table(  # append-only: determined | changed | declassified | destroyed, who, when, why
    "register_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("register_items.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(16), nullable=False),
    Column("reason", String(2000), nullable=False, server_default=""),
    Column("before", Text),  # JSON of the item's fields; NULL for 'determined'
    Column("after", Text, nullable=False),
    Index("register_history_item_id", "item_id", "id"),
)

# --- agent groups (revision 0013) ----------------------------------------------------------------

agent_groups = Table(  # a group's policy: register items, extra egress places, settings (server/groups.py)
    "agent_groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("description", String(2000), nullable=False, server_default=""),
    Column("register_items", Text, nullable=False, server_default='"all"'),  # JSON: "all" or a list of ids
    Column("egress", Text, nullable=False, server_default="[]"),  # JSON list of {path, kind, app}
    Column("settings", Text, nullable=False, server_default="{}"),  # JSON: {"heartbeat_s": 60}
    Column("agent_version", String(64), nullable=False, server_default=""),
    Column("revision", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

group_rules = Table(  # placement, in position order; the first match wins, none: the default group
    "group_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("position", Integer, nullable=False),
    Column("group_id", Integer, ForeignKey("agent_groups.id"), nullable=False),
    Column("hostname_pattern", String(255), nullable=False, server_default="*"),
    Column("os", String(16)),  # NULL: any
    Column("enroll_key_id", Integer),  # NULL: any
)

# --- the audit log (revision 0007) ----------------------------------------------------------------

audit_log = Table(  # append-only: every administrative action, written in the transaction of the change
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),  # token:<name> | console:<user> | cli | system
    Column("action", String(64), nullable=False),  # e.g. policy.activate, alert.status, user.create
    Column("target", String(255), nullable=False),
    Column("details", Text, nullable=False),  # JSON, never secrets
    Index("audit_log_at", "at"),
    Index("audit_log_actor_id", "actor", "id"),
    Index("audit_log_action_id", "action", "id"),
)


# --- daily seals of the agents' chains (revision 0016, server/seals.py) ----------------------------

seal_days = Table(  # a day whose events were sealed: sealed once
    "seal_days",
    metadata,
    Column("day", String(10), primary_key=True),  # the firm's calendar day, YYYY-MM-DD
    Column("sealed_at", DateTime(timezone=True), nullable=False),
    Column("agents", Integer, nullable=False),
)

seals = Table(  # append-only, never purged: one signed seal per agent and day
    "seals",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("agent_id", String(36), nullable=False),
    Column("day", String(10), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("chain_head", String(64), nullable=False),  # chain digest of the last event
    Column("merkle_root", String(64), nullable=False),
    Column("prev_seal", String(64)),  # SHA-256 of the agent's previous seal body
    Column("body", Text, nullable=False),  # the signed JSON
    Column("signature", Text, nullable=False),  # Ed25519, base64
    Column("key_fingerprint", String(64), nullable=False),
    Column("leaves", Text, nullable=False),  # base64 of the day's event digests, 32 bytes each
    Column("tsa_token", Text),  # RFC 3161 token, base64 (unused yet)
    Column("sealed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("agent_id", "day", name="seals_agent_day"),
    Index("seals_agent_id", "agent_id", "id"),
)
