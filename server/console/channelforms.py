"""The console's channel form: what an officer types (a robot's webhook address, an SMTP server)
turned into the apprise URL server/notify stores, and the routing ticked on the form.

Officers copy a DingTalk, WeCom or Feishu robot's address from the group's settings; they do not
know apprise's URL forms, so each kind has its own fields and this module builds the URL. The URL
is then checked by server/notify/channels.check_url (scheme, target, SSRF) like an API call's.
Nothing here ever echoes a secret back: errors name the field, never its value, and are fixed texts
(message ids of the console's catalogues: the page shows them in the viewer's language).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from rules.levels import SEVERITIES
from server.notify.channels import DEFAULT_MAX_PER_HOUR, ChannelError, scheme_of

KINDS = ("email", "dingtalk", "wecom", "feishu", "webhook", "apprise")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,200}$")
CATEGORY = re.compile(r"^[a-z0-9-]{1,64}$")
EMAIL = re.compile(r"^[^@\s,;<>]{1,64}@[^@\s,;<>]{1,255}$")
HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$")
MAX_NAME = 255
MAX_RECIPIENTS = 20


@dataclass(frozen=True)
class Routing:
    name: str
    severities: tuple[str, ...]
    categories: tuple[str, ...]
    max_per_hour: int
    enabled: bool


def kind_of(url: str) -> str:
    """The form's kind for a stored URL (the edit page and the list show it)."""
    scheme = scheme_of(url)
    return {
        "json": "webhook",
        "jsons": "webhook",
        "mailto": "email",
        "mailtos": "email",
        "dingtalk": "dingtalk",
        "wecombot": "wecom",
        "feishu": "feishu",
    }.get(scheme, "apprise")


def _field(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name)
    return values[0].strip() if values else ""


def has_target(fields: dict[str, list[str]]) -> bool:
    """Did the form give a target (the edit form keeps the old one when it gives none)?"""
    return any(_field(fields, n) for n in ("address", "secret", "smtp_host", "to", "password"))


def _token(address: str, param: str | None, path_prefix: str | None) -> str:
    """A robot's token from its webhook address (or the token alone)."""
    if "://" not in address:
        token = address
    else:
        parts = urlsplit(address)
        token = ""
        if param:
            token = dict(parse_qsl(parts.query)).get(param, "")
        if not token and path_prefix and parts.path.startswith(path_prefix):
            token = parts.path[len(path_prefix) :].strip("/")
    if not TOKEN.match(token):
        raise ChannelError(
            "the robot's address or token is not one: paste the robot's webhook address from the group's settings"
        )
    return token


def build_url(kind: str, fields: dict[str, list[str]]) -> str:
    """The apprise URL for a kind and its fields; ChannelError saying which field is wrong."""
    address = _field(fields, "address")
    if kind == "dingtalk":
        token = _token(address, "access_token", None)
        secret = _field(fields, "secret")
        if secret and not TOKEN.match(secret):
            raise ChannelError("the DingTalk signing secret (SEC...) has letters and digits only")
        return f"dingtalk://{secret + '@' if secret else ''}{token}/"
    if kind == "wecom":
        return f"wecombot://{_token(address, 'key', None)}"
    if kind == "feishu":
        return f"feishu://{_token(address, None, '/open-apis/bot/v2/hook/')}"
    if kind == "webhook":
        return _webhook(address)
    if kind == "email":
        return _email(fields)
    if kind == "apprise":
        if not address:
            raise ChannelError("give the apprise URL")
        return address
    raise ChannelError("the kind is one of email, dingtalk, wecom, feishu, webhook, apprise")


def _webhook(address: str) -> str:
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        raise ChannelError("the webhook address is not a URL like https://hooks.example.com/miwei") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelError("the webhook address starts with https:// (or http://) and names a host")
    scheme = "jsons" if parts.scheme == "https" else "json"
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    auth = ""
    if parts.username:
        auth = quote(parts.username, safe="") + (":" + quote(parts.password, safe="") if parts.password else "") + "@"
    query = urlencode(
        [("-" + k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    )  # apprise: -key is sent as ?key
    return f"{scheme}://{auth}{host}{':' + str(port) if port else ''}{parts.path or '/'}{'?' + query if query else ''}"


def _email(fields: dict[str, list[str]]) -> str:
    host, port = _field(fields, "smtp_host"), _field(fields, "smtp_port") or "465"
    security, user, password = _field(fields, "security") or "ssl", _field(fields, "user"), _field(fields, "password")
    sender = _field(fields, "sender")
    recipients = [r.strip() for r in re.split(r"[,;\s]+", _field(fields, "to")) if r.strip()]
    if not HOST.match(host):
        raise ChannelError("the SMTP server is a host name or an address")
    if not (port.isdigit() and 0 < int(port) < 65536):
        raise ChannelError("the SMTP port is a number from 1 to 65535")
    if security not in ("ssl", "starttls", "none"):
        raise ChannelError("the connection security is ssl, starttls or none")
    if not recipients or len(recipients) > MAX_RECIPIENTS or not all(EMAIL.match(r) for r in recipients):
        raise ChannelError("give 1 to 20 recipient addresses, separated by commas")
    if sender and not EMAIL.match(sender):
        raise ChannelError("the sender is an e-mail address")
    if password and not user:
        raise ChannelError("a password needs a user name")
    auth = ""
    if user:
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "") + "@"
    params = {"to": ",".join(recipients)}
    if sender:
        params["from"] = sender
    params["mode"] = "insecure" if security == "none" else security  # apprise's names; plain SMTP needs it said
    return f"{'mailto' if security == 'none' else 'mailtos'}://{auth}{host}:{port}?{urlencode(params)}"


def routing(fields: dict[str, list[str]]) -> Routing:
    """Name, severities, categories, rate and state from the form; ChannelError naming the field."""
    name = _field(fields, "name")
    if len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ChannelError("the name is at most 255 characters, without control characters")
    severities = tuple(s for s in SEVERITIES if s in fields.get("severity", []))
    unknown = [s for s in fields.get("severity", []) if s not in SEVERITIES]
    if unknown or not severities:
        raise ChannelError("tick at least one severity")
    categories = tuple(dict.fromkeys(c for c in fields.get("category", []) if c))
    if len(categories) > 100 or not all(CATEGORY.match(c) for c in categories):
        raise ChannelError("categories are lower-case letters, digits and '-'")
    rate = _field(fields, "max_per_hour") or str(DEFAULT_MAX_PER_HOUR)
    if not (rate.isascii() and rate.isdigit() and 1 <= int(rate) <= 10_000):
        raise ChannelError("at most per hour is a whole number from 1 to 10000")
    return Routing(name, severities, categories, int(rate), _field(fields, "enabled") == "1")
