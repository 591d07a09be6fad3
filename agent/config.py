"""The `agent:` section of the config file, parsed once into typed, immutable values."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field

import yaml

from agent.discovery_config import DiscoveryConfig, parse_discover
from agent.paths import is_under
from agent.usermounts_config import UserMountsConfig, parse_user_mounts
from rules.configfile import MIN_SECRET_CHARS, PLACEHOLDER_SECRETS, load_section, secret
from rules.levels import LEVELS
from rules.schema import (
    MISSING,
    Context,
    Section,
    boolean,
    choice,
    duration_s,
    folder,
    http_url,
    integer,
    number,
    sequence,
    text,
)

LOG_LEVELS = ("debug", "info", "warning", "error")
RULE_FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ClassifiedFolder:
    """One entry of the secret register as this PC sees it."""

    path: str
    level: str
    name: str = ""
    owner: str = ""


@dataclass(frozen=True)
class EgressConfig:
    removable: bool = True
    mount_roots: tuple[str, ...] = ("/media", "/run/media", "/mnt")
    folders: tuple[str, ...] = ()
    folder_kinds: tuple[str, ...] = ()  # beside folders: folder | sync | share | im (rules test `egress`)
    poll_s: float = 1.0  # how often mounts are listed
    folder_apps: tuple[str, ...] = ()  # beside folders: the app behind each ("" none; rules test `app`)
    discover: DiscoveryConfig = DiscoveryConfig()  # IM and cloud-drive folders found in the homes
    user_mounts: UserMountsConfig = UserMountsConfig()  # phones and shares in user space (agent/usermounts.py)

    def kind_of(self, folder: str) -> str:
        kinds = dict(zip(self.folders, self.folder_kinds, strict=False))  # kinds may be left out
        return kinds.get(folder, "folder")

    def app_of(self, folder: str) -> str:
        return dict(zip(self.folders, self.folder_apps, strict=False)).get(folder, "")


FOLDER_KINDS = ("folder", "sync", "share", "im")


@dataclass(frozen=True)
class PrintingConfig:
    """Print jobs as egress (agent/printing.py): the CUPS spool the agent watches."""

    enabled: bool = True
    spool_dir: str = "/var/spool/cups"  # cupsd's RequestRoot (cups-files.conf)


@dataclass(frozen=True)
class LimitsConfig:
    """The agent's own caps (agent/selfwatch.py): over them it says so, and slows or restarts."""

    cpu_percent: float = 25.0  # of one core, averaged over a minute
    memory_mb: int = 200  # resident
    spool_mb: int = 512  # events waiting to be sent; over it the least valuable are dropped (agent/spool.py)


NOTICE_SEVERITIES = ("critical", "high", "medium", "low")
NOTICE_LANGUAGES = ("auto", "zh", "en")


@dataclass(frozen=True)
class NoticeConfig:
    """The desktop notice an employee gets when their own copy raised an alert (agent/notice.py)."""

    severities: tuple[str, ...] = ()  # which alert severities the employee is told of; none: off
    per_minute: int = 3  # notices per user in any minute; more are folded into one "and N more"
    language: str = "auto"  # auto: the session's locale; zh | en: always that one
    default_language: str = "zh"  # auto, when the session states no locale
    text_zh: str = ""  # the firm's own words, after what was recorded (e.g. how to declare a business need)
    text_en: str = ""
    timeout_s: float = 5.0  # one call to the session's notification service


@dataclass(frozen=True)
class AgentConfig:
    server_url: str
    enroll_secret: str
    state_dir: str
    classified: tuple[ClassifiedFolder, ...]
    egress: EgressConfig
    rules: tuple[str, ...] = ()  # extra rule files and folders, on top of the collector's policy
    heartbeat_s: float = 30.0
    stable_s: float = 0.5  # a file is complete when size and mtime hold still this long
    reconcile_s: float = 900.0  # every egress place is rescanned this often
    watcher: str = "auto"  # "watchdog": watchdog's observer instead of the agent's own inotify reader (agent/inotify.py)
    batch_max: int = 500
    request_timeout_s: float = 30.0  # a delivery request the collector has not answered by then is retried
    retry_max_s: float = 60.0  # the longest wait between failed deliveries (the backoff's cap)
    log_level: str = "info"
    limits: LimitsConfig = LimitsConfig()
    notify_user: NoticeConfig = NoticeConfig()
    printing: PrintingConfig = PrintingConfig()
    ca_bundle: str | None = None  # PEM CA certificates the collector's HTTPS certificate is checked against; None: the system store
    inspect_user: str = "nobody"  # the unprivileged user the content inspection workers run as (agent as root)
    inspect_timeout_s: float = 10.0  # one file's inspection budget; a worker silent 5 s past it is killed
    network_apps: tuple[str, ...] = ()  # extra network-application lists (agent/netapps.py), beside the shipped one
    # written in the config, not in enroll_secret_file (agent/trust.py); where the secret came from,
    # not what the config means: left out of ==
    enroll_secret_inline: bool = field(default=True, compare=False)

    @property
    def spool_path(self) -> str:
        return os.path.join(self.state_dir, "spool.db")

    @property
    def index_path(self) -> str:
        return os.path.join(self.state_dir, "index.db")


def load_agent_config(path: str) -> AgentConfig:
    """Read and check the agent section; raises rules.errors.InvalidInput listing every error."""
    return load_section(path, "agent", _parse_agent)


def _parse_agent(section: Section, ctx: Context) -> AgentConfig:
    values = dict(
        server_url=section.get("server_url", http_url),
        enroll_secret=_parse_enroll_secret(section, ctx),
        state_dir=section.get("state_dir", folder(must_exist=False), default=os.path.join(ctx.base_dir, "var", "agent")),
        classified=section.get("classified", sequence(_parse_classified), default=()),
        egress=section.get("egress", _parse_egress, default=EgressConfig()),
        rules=section.get("rules", sequence(_rule_path), default=()),
        heartbeat_s=section.get("heartbeat_s", duration_s, default=30.0),
        stable_s=section.get("stable_s", number(minimum=0.05), default=0.5),
        reconcile_s=section.get("reconcile_s", duration_s, default=900.0),
        watcher=section.get("watcher", choice(("auto", "watchdog"), "watcher"), default="auto"),
        batch_max=section.get("batch_max", integer(1, 5000), default=500),
        request_timeout_s=section.get("request_timeout_s", number(minimum=0.5, maximum=600), default=30.0),
        retry_max_s=section.get("retry_max_s", number(minimum=0.5, maximum=3600), default=60.0),
        log_level=section.get("log_level", choice(LOG_LEVELS, "log level"), default="info"),
        limits=section.get("limits", _parse_limits, default=LimitsConfig()),
        notify_user=section.get("notify_user", _parse_notify_user, default=NoticeConfig()),
        printing=section.get("printing", _parse_printing, default=PrintingConfig()),
        ca_bundle=section.get("ca_bundle", _ca_bundle, default=None),
        inspect_user=section.get("inspect_user", _user_name, default="nobody"),
        inspect_timeout_s=section.get("inspect_timeout_s", number(minimum=1, maximum=600), default=10.0),
        network_apps=section.get("network_apps", sequence(_app_list_file), default=()),
    )
    _check_overlaps(section, ctx)
    if any(v is MISSING for v in values.values()):
        return MISSING
    return AgentConfig(**values, enroll_secret_inline="enroll_secret" in section.keys)


def _app_list_file(node: yaml.Node, key_path: str, ctx: Context):
    """A network-application list (agent/netapps.yaml's format), read and checked now."""
    from agent.netapps import load_app_lists
    from rules.errors import InvalidInput

    value = text(node, key_path, ctx)
    if value is MISSING:
        return MISSING
    path = os.path.abspath(os.path.join(ctx.base_dir, os.path.expanduser(value)))
    try:
        load_app_lists((path,))
    except InvalidInput as exc:
        return ctx.error(node, key_path, "; ".join(str(e) for e in exc.errors), "see agent/netapps.yaml for the format")
    return path


def _user_name(node: yaml.Node, key_path: str, ctx: Context):
    """A local user that exists (checked now: a typo must not leave parsers running as root)."""
    import pwd

    value = text(node, key_path, ctx)
    if value is MISSING:
        return value
    try:
        pwd.getpwnam(value)
    except KeyError:
        if value != "nobody":  # absent on some systems: the workers then use uid 65534
            return ctx.error(node, key_path, f"no such user {value!r}", "name an existing unprivileged user")
    if value == "root":
        return ctx.error(node, key_path, "must not be root", "name an unprivileged user, e.g. nobody")
    return value


def _parse_enroll_secret(section: Section, ctx: Context) -> str:
    """Either `enroll_secret` or `enroll_secret_file` (keeps the secret off the config file)."""
    if "enroll_secret" in section.keys and "enroll_secret_file" in section.keys:  # said before either is read
        section.read.update(("enroll_secret", "enroll_secret_file"))
        return ctx.error(section.keys["enroll_secret_file"][0], "agent.enroll_secret_file", "set either enroll_secret or enroll_secret_file, not both")
    inline = section.get("enroll_secret", secret, default=None)
    from_file = section.get("enroll_secret_file", _secret_file, default=None)
    if inline is MISSING or from_file is MISSING:
        return MISSING
    if not inline and not from_file:
        return ctx.error(section.node, "agent.enroll_secret", "required key is missing", "or set enroll_secret_file")
    return inline or from_file


def _ca_bundle(node: yaml.Node, key_path: str, ctx: Context):
    """A PEM file of CA certificates that loads (a typo must not silently fall back to nothing)."""
    path = text(node, key_path, ctx)
    if path is MISSING:
        return MISSING
    path = os.path.abspath(os.path.join(ctx.base_dir, os.path.expanduser(path)))
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        return ctx.error(node, key_path, f"not a PEM file of CA certificates: {exc.reason or exc}", "the CA that signed the collector's certificate")
    except OSError as exc:
        return ctx.error(node, key_path, f"cannot read '{path}': {exc.strerror}", "the CA that signed the collector's certificate")
    return path


def _secret_file(node: yaml.Node, key_path: str, ctx: Context):
    """The enrolment secret from a file (how a mass rollout hands it out: docs/deploy.md), checked
    as an inline secret is, and refused when every local user may read or change the file."""
    path = text(node, key_path, ctx)
    if path is MISSING:
        return MISSING
    path = os.path.join(ctx.base_dir, os.path.expanduser(path))
    try:
        with open(path, encoding="utf-8") as f:
            mode = os.fstat(f.fileno()).st_mode
            value = f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        return ctx.error(node, key_path, f"cannot read the secret file: {getattr(exc, 'strerror', None) or exc}")
    if os.name == "posix" and mode & 0o007:  # NTFS rights are ACLs, not these bits
        return ctx.error(
            node, key_path, f"the secret file is open to every user (mode {mode & 0o777:04o})", f"chmod 600 {path}"
        )
    if value.lower() in PLACEHOLDER_SECRETS:
        return ctx.error(node, key_path, "the secret in this file is still a placeholder", "set a long random secret")
    if len(value) < MIN_SECRET_CHARS:
        return ctx.error(
            node, key_path, f"the secret in this file must be at least {MIN_SECRET_CHARS} characters", "set a long random secret"
        )
    return value


def _rule_path(node: yaml.Node, key_path: str, ctx: Context):
    """An extra rule file, or a folder of them (*.yaml, *.yml); what they hold is checked at start."""
    value = text(node, key_path, ctx)
    if value is MISSING:
        return MISSING
    path = os.path.abspath(os.path.join(ctx.base_dir, os.path.expanduser(value)))
    if os.path.isdir(path):
        try:
            names = os.listdir(path)
        except OSError as exc:
            return ctx.error(node, key_path, f"cannot read the folder: {exc.strerror}: {path}")
        if not any(name.endswith(RULE_FILE_SUFFIXES) for name in names):
            return ctx.error(node, key_path, f"no rule files in this folder: {path}", "rule files end in .yaml or .yml")
        return path
    if not os.path.isfile(path):
        return ctx.error(node, key_path, f"{'not a file or folder' if os.path.exists(path) else 'no such file or folder'}: {path}")
    return path


def _parse_classified(node: yaml.Node, key_path: str, ctx: Context):
    section = Section(node, key_path, ctx)
    if not section.valid:
        return MISSING
    values = dict(
        path=section.get("path", folder(must_exist=True)),
        level=section.get("level", choice(LEVELS, "level")),
        name=section.get("name", text, default=""),
        owner=section.get("owner", text, default=""),
    )
    section.done()
    if any(v is MISSING for v in values.values()):
        return MISSING
    return ClassifiedFolder(**values)


def _parse_egress(node: yaml.Node, key_path: str, ctx: Context):
    section = Section(node, key_path, ctx)
    if not section.valid:
        return MISSING
    defaults = EgressConfig()
    values = dict(
        removable=section.get("removable", boolean, default=defaults.removable),
        mount_roots=section.get("mount_roots", sequence(folder(must_exist=False)), default=defaults.mount_roots),
        folders=section.get("folders", sequence(_egress_folder), default=()),
        poll_s=section.get("poll_s", number(minimum=0.1), default=defaults.poll_s),
        discover=section.get("discover", parse_discover, default=defaults.discover),
        user_mounts=section.get("user_mounts", parse_user_mounts, default=defaults.user_mounts),
    )
    section.done()
    if any(v is MISSING for v in values.values()):
        return MISSING
    folders = values.pop("folders")
    return EgressConfig(
        folders=tuple(f[0] for f in folders), folder_kinds=tuple(f[1] for f in folders), folder_apps=tuple(f[2] for f in folders), **values
    )


def _parse_limits(node: yaml.Node, key_path: str, ctx: Context):
    section = Section(node, key_path, ctx)
    if not section.valid:
        return MISSING
    defaults = LimitsConfig()
    values = dict(
        cpu_percent=section.get("cpu_percent", number(minimum=1, maximum=400), default=defaults.cpu_percent),
        memory_mb=section.get("memory_mb", integer(32, 65536), default=defaults.memory_mb),
        spool_mb=section.get("spool_mb", integer(16, 1048576), default=defaults.spool_mb),
    )
    section.done()
    if any(v is MISSING for v in values.values()):
        return MISSING
    return LimitsConfig(**values)


def _parse_notify_user(node: yaml.Node, key_path: str, ctx: Context):
    section = Section(node, key_path, ctx)
    if not section.valid:
        return MISSING
    defaults = NoticeConfig()
    values = dict(
        severities=section.get("severities", sequence(choice(NOTICE_SEVERITIES, "severity")), default=()),
        per_minute=section.get("per_minute", integer(1, 60), default=defaults.per_minute),
        language=section.get("language", choice(NOTICE_LANGUAGES, "language"), default=defaults.language),
        default_language=section.get("default_language", choice(NOTICE_LANGUAGES[1:], "language"), default=defaults.default_language),
        text_zh=section.get("text_zh", text, default=""),
        text_en=section.get("text_en", text, default=""),
        timeout_s=section.get("timeout_s", number(minimum=0.5, maximum=60), default=defaults.timeout_s),
    )
    section.done()
    if any(v is MISSING for v in values.values()):
        return MISSING
    return NoticeConfig(**{**values, "severities": tuple(dict.fromkeys(values["severities"]))})


def _parse_printing(node: yaml.Node, key_path: str, ctx: Context):
    section = Section(node, key_path, ctx)
    if not section.valid:
        return MISSING
    defaults = PrintingConfig()
    values = dict(
        enabled=section.get("enabled", boolean, default=defaults.enabled),
        # may be absent: CUPS installed later is watched from then on
        spool_dir=section.get("spool_dir", folder(must_exist=False), default=defaults.spool_dir),
    )
    section.done()
    if any(v is MISSING for v in values.values()):
        return MISSING
    return PrintingConfig(**values)


def _egress_folder(node: yaml.Node, key_path: str, ctx: Context):
    """A folder path, or {path: ..., kind: sync | share | im | folder, app: ...} to say what kind
    of place it is and which app keeps it (a WeChat folder moved out of the home, say)."""
    if not isinstance(node, yaml.MappingNode):
        path = folder(must_exist=True)(node, key_path, ctx)
        return path if path is MISSING else (path, "folder", "")
    section = Section(node, key_path, ctx)
    path = section.get("path", folder(must_exist=True))
    kind = section.get("kind", choice(FOLDER_KINDS, "egress kind"), default="folder")
    app = section.get("app", text, default="")
    section.done()
    return MISSING if MISSING in (path, kind, app) else (path, kind, app)


OVERLAP_HINT = "a folder is either classified or an egress place, not both"


def _check_overlaps(section: Section, ctx: Context) -> None:
    """An egress folder inside a classified folder, or a classified folder inside an egress
    folder, would make one file both classified content and a copy leaving: refuse both."""
    classified = _folder_items(section, ("classified",), "path", ctx)
    egress = _folder_items(section, ("egress", "folders"), None, ctx)
    for e_key, e_node, e_path in egress:
        for c_key, c_node, c_path in classified:
            e_real, c_real = os.path.realpath(e_path), os.path.realpath(c_path)
            if e_real == c_real:
                ctx.error(e_node, e_key, f"is the classified folder {c_path} ({c_key})", OVERLAP_HINT)
            elif is_under(e_real, c_real):
                ctx.error(e_node, e_key, f"is inside the classified folder {c_path} ({c_key})", OVERLAP_HINT)
            elif is_under(c_real, e_real):
                ctx.error(c_node, c_key, f"is inside the egress folder {e_path} ({e_key})", OVERLAP_HINT)


def _folder_items(section: Section, keys: tuple[str, ...], field: str | None, ctx: Context) -> list:
    """(key path, node, resolved folder) of each readable item of the list at `keys`; items that
    are not readable were reported by their own reader."""
    node, key_path = section.node, section.key_path
    for key in keys:
        node = _mapping_value(node, key)
        key_path = f"{key_path}.{key}"
    if not isinstance(node, yaml.SequenceNode):
        return []
    found = []
    for i, item in enumerate(node.value):
        item_path = f"{key_path}[{i}]"
        # classified entries name their folder in `path`; an egress folder may too (with its kind)
        key = field or ("path" if isinstance(item, yaml.MappingNode) else None)
        if key is not None:
            item, item_path = _mapping_value(item, key), f"{item_path}.{key}"
        if isinstance(item, yaml.ScalarNode) and item.tag.endswith(":str") and item.value:
            found.append((item_path, item, os.path.abspath(os.path.join(ctx.base_dir, os.path.expanduser(item.value)))))
    return found


def _mapping_value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((value for k, value in node.value if k.value == key), None)
