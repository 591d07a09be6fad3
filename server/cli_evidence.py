"""`miwei-server signing-key`, `verify-pack` and `seal`: the collector's key, packs and daily seals."""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta

from rules.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, config_option


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    key = sub.add_parser("signing-key", parents=[common], help="print the fingerprint and public key packs and seals are signed with")
    key.set_defaults(handler=cmd_signing_key)
    check = sub.add_parser(
        "verify-pack",
        parents=[config_option(default=None, help_text="a collector config: check against its key (when no --public-key)")],
        help="check an evidence pack: valid, or which file was changed (exit 0 / 1)",
    )
    check.add_argument("file", help="the evidence pack (ZIP)")
    check.add_argument("--public-key", help="the collector's public key (PEM, from `signing-key`)")
    check.set_defaults(handler=cmd_verify_pack)
    seal = sub.add_parser("seal", parents=[common], help="seal a day's chained events now (default: the days not sealed yet up to yesterday)")
    seal.add_argument("--day", help="YYYY-MM-DD on the firm's clock")
    seal.add_argument("--check", action="store_true", help="check the day's seals against the stored events instead")
    seal.set_defaults(handler=cmd_seal)


def _key(config):
    from server.signing import key_path, load_or_create

    return load_or_create(key_path(config.database, config.signing_key_file))


def cmd_signing_key(config, args) -> int:
    from server.signing import SigningKeyError

    try:
        key = _key(config)
    except SigningKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"fingerprint (SHA-256): {key.fingerprint}")
    print(f"private key: {key.path}")
    print(key.public_pem, end="")
    return EXIT_OK


def cmd_verify_pack(config, args) -> int:
    from server.packcheck import verify_pack
    from server.signing import SigningKeyError

    try:
        with open(args.file, "rb") as f:
            data = f.read()
        public = None
        if args.public_key:
            with open(args.public_key, "rb") as f:
                public = f.read()
        elif config is not None:
            public = _key(config).public_pem.encode("ascii")
    except (OSError, SigningKeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    verdict = verify_pack(data, public)
    if not verdict.ok:
        print(f"{args.file}: NOT VALID")
        for problem in verdict.problems:
            print(f"  - {problem}")
        return EXIT_FAILURE
    print(f"{args.file}: valid, {verdict.files} files, signed with key {verdict.fingerprint}")
    print(f"events proven part of a signed daily seal: {verdict.events_sealed}; not sealed (yet): {verdict.events_unsealed}")
    if not verdict.key_given:
        print("checked against the key inside the pack: compare its fingerprint with the collector's (`miwei-server signing-key`), or give --public-key")
    return EXIT_OK


def cmd_seal(config, args) -> int:
    from server.database import make_engine, migrate
    from server.firmtime import zone
    from server.seals import SealError, check_day, seal_day, seal_pending, stamp_missing
    from server.signing import SigningKeyError
    from server.store import Store

    firm = zone(config.timezone)
    try:
        day = date.fromisoformat(args.day) if args.day else None
    except ValueError:
        print("error: --day is YYYY-MM-DD", file=sys.stderr)
        return EXIT_BAD_INPUT
    engine = make_engine(config.database)
    migrate(engine)
    now = Store(engine).clock()
    try:
        key = _key(config)
        if args.check:
            day = day or now.astimezone(firm).date() - timedelta(days=1)
            checks = check_day(engine, key.private.public_key(), day.isoformat(), now, config.retention_days)
            for c in checks:
                print(f"{c.day} agent {c.agent_id}: {'valid' if c.ok else 'NOT VALID'}, {c.events_kept} of {c.events_sealed} sealed events stored")
                for problem in c.problems:
                    print(f"  - {problem}")
            if not checks:
                print(f"{day.isoformat()}: no seals")
            return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILURE
        runs = [seal_day(engine, key, day, firm, now)] if day else seal_pending(engine, key, firm, now, config.tsa_url)
        if day and config.tsa_url:
            stamp_missing(engine, config.tsa_url)
    except (SealError, SigningKeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for run in runs:
        print(f"{run.day}: " + (f"sealed, {run.agents} agent(s)" if run.sealed else "sealed before, nothing done"))
    if not runs:
        print("nothing to seal: every day up to yesterday is sealed")
    return EXIT_OK
