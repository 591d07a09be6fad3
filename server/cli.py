"""`miwei-server`: serve the API, manage the schema, users and tokens."""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import os
import re
import sys

from rules.cli import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_OK,
    add_config_before,
    config_option,
    configure_logging,
    dispatch,
)
from server import __version__, heap
from server.auth import ROLES
from server.cli_assessor import add_commands as add_assessor_commands
from server.cli_evidence import add_commands as add_evidence_commands
from server.config import ServerConfig, load_server_config

NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD_CHARS = 12


def main(argv: list[str] | None = None) -> int:
    return dispatch(_parser(), _load_config, argv)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="miwei-server", description="MiWei collector")
    parser.add_argument("--version", action="version", version=f"miwei-server {__version__}")
    add_config_before(parser)
    common = config_option()
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", parents=[common], help="serve the API").set_defaults(handler=cmd_run)
    sub.add_parser("migrate", parents=[common], help="bring the database schema up to date").set_defaults(handler=cmd_migrate)
    sub.add_parser("check-config", parents=[common], help="validate the server section").set_defaults(handler=cmd_check_config)
    user = sub.add_parser("create-user", parents=[common], help="create a console user")
    user.add_argument("name")
    user.add_argument("--role", choices=ROLES, required=True)
    user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user.set_defaults(handler=cmd_create_user)
    token = sub.add_parser("create-token", parents=[common], help="print a new API token")
    token.add_argument("name")
    token.add_argument(
        "--role", choices=ROLES, default="admin", help="admin (default) may change rules, devices and channels; analyst reads and works alerts"
    )
    token.set_defaults(handler=cmd_create_token)
    revoke = sub.add_parser("revoke-token", parents=[common], help="revoke every live API token of this name")
    revoke.add_argument("name")
    revoke.set_defaults(handler=cmd_revoke_token)
    retire = sub.add_parser("revoke-agent", parents=[common], help="retire an agent (by id or host name): token refused, history kept")
    retire.add_argument("name", help="agent id or host name")
    retire.add_argument("--block-host", action="store_true", help="an agent enrolling with this host name again waits for approval")
    retire.set_defaults(handler=cmd_revoke_agent)
    approve = sub.add_parser("approve-agent", parents=[common], help="let a pending agent report")
    approve.add_argument("agent_id")
    approve.set_defaults(handler=cmd_approve_agent)
    unblock = sub.add_parser("unblock-host", parents=[common], help="let agents of this host name enrol without approval again")
    unblock.add_argument("hostname")
    unblock.set_defaults(handler=cmd_unblock_host)
    key = sub.add_parser("create-enroll-key", parents=[common], help="print a new enrolment key for a group of PCs")
    key.add_argument("name", help="the group, e.g. rnd-floor-3")
    key.add_argument("--expires", default="30d", help="how long it enrols, e.g. 12h, 30d (default 30d)")
    key.set_defaults(handler=cmd_create_enroll_key)
    unkey = sub.add_parser("revoke-enroll-key", parents=[common], help="revoke every live enrolment key of this name")
    unkey.add_argument("name")
    unkey.set_defaults(handler=cmd_revoke_enroll_key)
    service = sub.add_parser("install-service", parents=[common], help="write, enable and start a hardened systemd unit")
    service.add_argument("--print", action="store_true", help="show the unit, write nothing")
    service.add_argument("--no-start", action="store_true", help="write and enable only (no systemd running: a container)")
    service.add_argument("--user", default="miwei", help="the system user it runs as (default miwei, made by the .deb)")
    service.add_argument("--unit-dir", default="/etc/systemd/system", help=argparse.SUPPRESS)
    service.set_defaults(handler=cmd_install_service)
    unservice = sub.add_parser("uninstall-service", help="stop, disable and remove the unit; the database is kept")
    unservice.add_argument("--unit-dir", default="/etc/systemd/system", help=argparse.SUPPRESS)
    unservice.set_defaults(handler=cmd_uninstall_service, config=None)
    move = sub.add_parser("copy-database", parents=[common], help="copy the SQLite database into an empty PostgreSQL one (collector stopped)")
    move.add_argument("--to", required=True, metavar="URL", help="postgresql+psycopg://user@host/db (the password in ~/.pgpass or PGPASSWORD)")
    move.add_argument("--from", dest="source", metavar="URL", help="the SQLite database to copy (default: the config's server.database)")
    move.add_argument("--replace-target", action="store_true", help="delete everything the target holds first")
    move.add_argument("--no-seal-check", action="store_true", help="skip re-checking every seal (row counts and digests are still compared)")
    move.set_defaults(handler=cmd_copy_database)
    add_evidence_commands(sub, common)  # signing-key, verify-pack, seal (server/cli_evidence.py)
    add_assessor_commands(sub, common)  # assessor-report (server/cli_assessor.py)
    return parser


def _load_config(path: str | None) -> ServerConfig | None:
    return None if path is None else load_server_config(path)  # uninstall-service works without one


def _store(config: ServerConfig):
    from server.database import make_engine, migrate
    from server.store import Store

    engine = make_engine(config.database)
    migrate(engine)
    return Store(engine)


def cmd_run(config: ServerConfig, args) -> int:
    import uvicorn
    from loguru import logger

    from server.app import create_app
    from server.filemodes import PRIVATE_UMASK, warn_open_files
    from server.signing import SigningKeyError, key_path, load_or_create
    from server.workers import run_workers, worker_count

    os.umask(PRIVATE_UMASK)  # the database, its WAL and SHM, the logs: the collector's user alone
    configure_logging(config.log_level, config.log_file)
    try:
        store = _store(config)
    except Exception as exc:
        logger.error("cannot open the database error={!r}", str(exc))
        return EXIT_FAILURE
    warn_open_files(config.database, config.log_file)
    try:  # packs and seals are signed with it: made on first start (server/signing.py)
        key = load_or_create(key_path(config.database, config.signing_key_file))
    except SigningKeyError as exc:
        logger.error("cannot use the signing key error={!r}", str(exc))
        return EXIT_FAILURE
    logger.info("signing key path={!r} fingerprint={}", key.path, key.fingerprint)
    host, port = config.listen
    scheme = "https" if config.tls_cert else "http"
    logger.info(
        "collector starting version={} listen={}://{}:{} database={}", __version__, scheme, host, port, _redact(config.database)
    )
    if scheme == "http" and not _loopback(host):
        logger.warning(
            "PLAIN HTTP on a non-loopback address listen={}:{}: agent tokens and events cross the network unencrypted;"
            " set server.tls_cert and server.tls_key (or terminate TLS in front)", host, port
        )
    tls = {"ssl_certfile": config.tls_cert, "ssl_keyfile": config.tls_key} if config.tls_cert else {}
    count = worker_count(config.workers)
    if count > 1:  # a supervisor and `count` processes on one listening socket (server/workers.py)
        return run_workers(config, store, count, dict(log_level=config.log_level, proxy_headers=False, server_header=False, **tls))
    app = create_app(config, store)
    heap.settle()  # frozen after start-up, the youngest generation sized for a batch (server/heap.py)
    uvicorn.run(app, host=host, port=port, log_level=config.log_level, proxy_headers=False, server_header=False, **tls)
    return EXIT_OK


def cmd_migrate(config: ServerConfig, args) -> int:
    from server.database import make_engine, migrate

    before, after = migrate(make_engine(config.database))
    print(f"schema at revision {after}" + (f" (was {before})" if before != after else " (already up to date)"))
    return EXIT_OK


def cmd_copy_database(config: ServerConfig, args) -> int:
    from server.dbcopy import CopyFailed, CopyRefused, copy_database, safe_url
    from server.signing import SigningKeyError, key_path, load_or_create
    from server.times import utc_now

    source = args.source or config.database
    if _collector_answers(config.listen):
        host, port = config.listen
        print(f"error: a collector answers on {host}:{port}: stop it first (systemctl stop miwei-server)", file=sys.stderr)
        return EXIT_BAD_INPUT
    key_file = key_path(source, config.signing_key_file)
    public = None
    if os.path.exists(key_file) and not args.no_seal_check:
        try:  # the seals were signed with it
            public = load_or_create(key_file).private.public_key()
        except SigningKeyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILURE
    elif not args.no_seal_check:
        print(f"warning: no signing key at {key_file}: seals are not checked", file=sys.stderr)
    print(f"copying {safe_url(source)} -> {safe_url(args.to)}", file=sys.stderr)
    try:
        report = copy_database(
            source, args.to, public_key=public, now=utc_now(), retention_days=config.retention_days,
            replace_target=args.replace_target, check_seals=not args.no_seal_check, progress=lambda line: print(line, file=sys.stderr),
        )
    except CopyRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CopyFailed as exc:
        print(f"error: the copy failed: {exc}", file=sys.stderr)
        print("the target holds none of it (its transaction was rolled back) and the source is unchanged: fix the cause and run the same command again", file=sys.stderr)
        return EXIT_FAILURE
    total = sum(t.rows for t in report.tables)
    for t in report.tables:
        print(f"{t.name:<20} {t.rows:>12,} rows  verified")
    print(f"{'total':<20} {total:>12,} rows in {len(report.tables)} tables; identical to the source (row counts and contents)")
    if report.months_created:
        print(f"event months created: {report.months_created[0]} .. {report.months_created[-1]} ({len(report.months_created)})")
    if public is not None and not args.no_seal_check:
        print(f"seals checked: {report.seals_checked}" + (f", {len(report.seals_failing_in_source)} failing as they already did in the source: {', '.join(report.seals_failing_in_source)}" if report.seals_failing_in_source else ", all valid"))
    print("next: set server.database to the PostgreSQL URL and start the collector; agents keep their tokens")
    if not config.signing_key_file and os.path.exists(key_file):
        print(f"      and set server.signing_key_file: {key_file} (on PostgreSQL the default is another folder: seals and packs must keep this key)")
    return EXIT_OK


def _collector_answers(listen: tuple[str, int]) -> bool:
    """Does something accept connections where this config's collector listens?"""
    import socket

    host, port = listen
    if not port:
        return False
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def cmd_check_config(config: ServerConfig, args) -> int:
    print(f"{args.config}: server section is valid")
    return EXIT_OK


def cmd_create_user(config: ServerConfig, args) -> int:
    from argon2 import PasswordHasher

    if not NAME.match(args.name):
        print("error: a user name is 1-64 letters, digits, '.', '_', '@' or '-'", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return EXIT_BAD_INPUT
    if len(password) < MIN_PASSWORD_CHARS:
        print(f"error: the password needs at least {MIN_PASSWORD_CHARS} characters", file=sys.stderr)
        return EXIT_BAD_INPUT
    store = _store(config)
    if store.user_exists(args.name):
        print(f"error: user '{args.name}' exists already", file=sys.stderr)
        return EXIT_BAD_INPUT
    store.create_user(args.name, args.role, PasswordHasher().hash(password), actor="cli")
    print(f"created {args.role} '{args.name}'")
    return EXIT_OK


def cmd_create_token(config: ServerConfig, args) -> int:
    from server.auth import API_TOKEN_PREFIX, new_token

    if not NAME.match(args.name):
        print("error: a token name is 1-64 letters, digits, '.', '_', '@' or '-'", file=sys.stderr)
        return EXIT_BAD_INPUT
    token = new_token(API_TOKEN_PREFIX)
    _store(config).create_api_token(args.name, token, actor="cli", role=args.role)
    print(token)
    return EXIT_OK


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def cmd_revoke_token(config: ServerConfig, args) -> int:
    revoked = _store(config).revoke_api_tokens_named(args.name, actor="cli")
    if not revoked:
        print(f"error: no live API token named '{args.name}'", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"revoked {revoked} token{'s' if revoked != 1 else ''} named '{args.name}'")
    return EXIT_OK


def cmd_revoke_agent(config: ServerConfig, args) -> int:
    store = _store(config)
    found = store.fleet.agents_named(args.name)
    if not found:
        print(f"error: no agent (not retired) with id or host name '{args.name}'", file=sys.stderr)
        return EXIT_BAD_INPUT
    for agent_id in found:
        store.fleet.retire(agent_id, "cli", block_host=args.block_host)
        print(f"retired agent {agent_id}")
    if args.block_host:
        print("its host name now enrols only with an admin's approval")
    return EXIT_OK


def cmd_approve_agent(config: ServerConfig, args) -> int:
    if not _store(config).fleet.approve(args.agent_id, "cli"):
        print(f"error: no pending agent '{args.agent_id}'", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"approved agent {args.agent_id}")
    return EXIT_OK


def cmd_unblock_host(config: ServerConfig, args) -> int:
    if not _store(config).fleet.unblock_host(args.hostname, "cli"):
        print(f"error: the host name '{args.hostname}' is not blocked", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"unblocked host name '{args.hostname}': its agents enrol without approval again")
    return EXIT_OK


DURATION = re.compile(r"^([1-9][0-9]{0,5})([hd])$")


def cmd_create_enroll_key(config: ServerConfig, args) -> int:
    from datetime import timedelta

    if not NAME.match(args.name):
        print("error: a key name is 1-64 letters, digits, '.', '_', '@' or '-'", file=sys.stderr)
        return EXIT_BAD_INPUT
    match = DURATION.match(args.expires)
    if not match or (days := int(match[1]) / (24 if match[2] == "h" else 1)) > 3660:
        print("error: --expires is hours or days, e.g. 12h or 30d (at most ten years)", file=sys.stderr)
        return EXIT_BAD_INPUT
    store = _store(config)
    expires_at = store.clock() + timedelta(days=days)
    _, key = store.fleet.create_key(args.name, expires_at, "cli")
    print(key)
    print(f"enrols agents until {expires_at.isoformat(timespec='seconds')} (put it in the group's agent.enroll_secret_file)", file=sys.stderr)
    return EXIT_OK


def cmd_revoke_enroll_key(config: ServerConfig, args) -> int:
    revoked = _store(config).fleet.revoke_keys(args.name, "cli")
    if not revoked:
        print(f"error: no live enrolment key named '{args.name}'", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"revoked {revoked} enrolment key{'s' if revoked != 1 else ''} named '{args.name}'")
    return EXIT_OK


def cmd_install_service(config: ServerConfig, args) -> int:
    from server import service

    try:
        unit = service.unit_for(config, args.config, user=args.user)
        if args.print:
            print(service.render_unit(unit), end="")
            return EXIT_OK
        service.check_paths(config)
        service.check_config_readable(unit.config_path, args.user)
        for line in service.install(unit, args.unit_dir, start=not args.no_start):
            print(line)
    except service.ServiceError as exc:
        print(f"miwei-server install-service: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_uninstall_service(config: None, args) -> int:
    from server import service

    try:
        for line in service.uninstall(args.unit_dir):
            print(line)
    except service.ServiceError as exc:
        print(f"miwei-server uninstall-service: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _redact(url: str) -> str:
    """A database URL for the log, without its password."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


if __name__ == "__main__":
    sys.exit(main())
