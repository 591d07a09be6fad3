"""`miwei-agent`: run the agent, build the index, classify files, check rules, show status,
install or remove the OS service."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import UTC

from agent import __version__
from agent.config import AgentConfig, load_agent_config
from rules.cli import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_OK,
    add_config_before,
    config_option,
    configure_logging,
    dispatch,
    report_invalid,
)
from rules.configfile import default_config_path
from rules.errors import InvalidInput


def main(argv: list[str] | None = None) -> int:
    return dispatch(_parser(), _load_config, argv)


def _load_config(path: str | None) -> AgentConfig | None:
    """None only for check-rules run where there is no config file (see _optional_config)."""
    return None if path is None else load_agent_config(path)


def _optional_config() -> argparse.ArgumentParser:
    """check-rules reads a config when one is named or found, and works without one."""
    default = default_config_path()
    return config_option(
        default=default if os.environ.get("MIWEI_CONFIG") or os.path.exists(default) else None,
        help_text="config file whose agent.rules are checked too (default ./config.yaml or $MIWEI_CONFIG, when present)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="miwei-agent", description="MiWei endpoint agent")
    parser.add_argument("--version", action="version", version=f"miwei-agent {__version__}")
    add_config_before(parser)
    common = config_option()
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", parents=[common], help="run the agent in the foreground")
    run.add_argument(
        "--service", action="store_true", help="run as the installed service: the config, venv and package must be root's alone"
    )
    run.set_defaults(handler=cmd_run)
    index = sub.add_parser("index", parents=[common], help="build or refresh the fingerprint index")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.set_defaults(handler=cmd_index)
    scan = sub.add_parser("scan", parents=[common], help="classify files now, offline")
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument("--json", action="store_true", help="one JSON object per file")
    scan.set_defaults(handler=cmd_scan)
    check = sub.add_parser("check-rules", parents=[_optional_config()], help="validate rule files; every error, located")
    check.add_argument("paths", nargs="*", metavar="PATH", help="rule files or folders, checked with the default packs")
    check.set_defaults(handler=cmd_check_rules)
    status = sub.add_parser("status", parents=[common], help="enrolment, spool depth, last delivery")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)
    install = sub.add_parser(
        "install-service", parents=[common], help="install, enable and start the OS service (systemd, launchd, Windows)"
    )
    install.add_argument("--print", action="store_true", help="show the unit (plist, service settings); install nothing")
    install.add_argument("--no-start", action="store_true", help="install and enable, do not start (images, chroots)")
    install.add_argument("--unit-dir", metavar="DIR", help="write the unit or plist here instead of the system folder")
    install.set_defaults(handler=cmd_install_service)
    uninstall = sub.add_parser("uninstall-service", help="stop, disable and remove the OS service; state is kept")
    uninstall.add_argument("--unit-dir", metavar="DIR", help="the folder install-service wrote to with --unit-dir")
    uninstall.set_defaults(handler=cmd_uninstall_service, config=None)  # works with a config that is gone or broken
    return parser


def cmd_run(config: AgentConfig, args) -> int:
    from agent.service.runner import run_agent

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    return run_agent(config, stopping, args.config, service=args.service)


def cmd_install_service(config: AgentConfig, args) -> int:
    """The config was checked by dispatch; the rule files are checked too: a service that cannot
    start would only fail, again and again, where nobody looks."""
    from agent.service import ServiceError, check_config_file, manager_for, spec_for
    from agent.service.runner import check_rule_files

    configure_logging("warning")
    try:
        check_rule_files(config)
    except InvalidInput as exc:
        return report_invalid(exc)
    try:
        manager = manager_for(target_dir=args.unit_dir)
        spec = spec_for(config, args.config)
        if args.print:
            print(manager.render(spec), end="")
            return EXIT_OK
        check_config_file(spec.config_path)
        for line in manager.install(spec, start=not args.no_start):
            print(line)
    except ServiceError as exc:
        print(f"miwei-agent install-service: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_uninstall_service(config: None, args) -> int:
    from agent.service import ServiceError, manager_for

    configure_logging("warning")
    try:
        for line in manager_for(target_dir=args.unit_dir).uninstall():
            print(line)
    except ServiceError as exc:
        print(f"miwei-agent uninstall-service: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_index(config: AgentConfig, args) -> int:
    from tqdm import tqdm

    from agent.index import FingerprintIndex
    from agent.inspector import WorkerFingerprints, make_inspector
    from agent.trust import UntrustedPath, prepare_state_dir

    configure_logging("warning")
    os.umask(0o077)  # the index holds classified paths and hashes: ours alone
    try:
        prepare_state_dir(config.state_dir)
    except (UntrustedPath, OSError) as exc:
        print(f"miwei-agent: refused: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    inspector = make_inspector(config.inspect_user, config.inspect_timeout_s)  # documents parsed without root
    index = FingerprintIndex(config.index_path, config.classified, fingerprint=WorkerFingerprints(inspector))
    bar = tqdm(total=0, unit="B", unit_scale=True, desc="hashing", disable=args.quiet, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        stats = index.refresh(progress)
    finally:
        bar.close()
        index.close()
        inspector.close()
    print(
        f"indexed {stats.files} files: {stats.hashed} hashed ({stats.bytes_hashed} bytes), "
        f"{stats.removed} removed, {stats.errors} unreadable"
    )
    return EXIT_FAILURE if stats.errors else EXIT_OK


def cmd_scan(config: AgentConfig, args) -> int:
    from agent.policy import PolicyStore, read_local_sources
    from agent.scan import format_result, scan_paths

    configure_logging("warning")
    try:
        rules = PolicyStore(config.state_dir, read_local_sources(config.rules)).load()
    except InvalidInput as exc:
        return report_invalid(exc)
    worst = EXIT_OK
    for result in scan_paths(config, args.paths, rules):
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            print(format_result(result))
        if result.get("error"):
            worst = EXIT_FAILURE
    return worst


def cmd_check_rules(config: AgentConfig | None, args) -> int:
    from agent.rulecheck import check_rules

    configure_logging("warning")
    checked = check_rules([*(config.rules if config else ()), *args.paths])
    for error in checked.errors:
        print(str(error), file=sys.stderr)
    if checked.errors:
        return EXIT_BAD_INPUT
    for warning in checked.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    files = len(checked.files)
    warned = f", {len(checked.warnings)} warning{'s' if len(checked.warnings) != 1 else ''}" if checked.warnings else ""
    print(f"{checked.rule_count} rules OK in {files} file{'s' if files != 1 else ''}{warned}")
    return EXIT_OK


def cmd_status(config: AgentConfig, args) -> int:
    from agent.app import read_status

    configure_logging("warning")
    status = read_status(config)
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
        return EXIT_OK
    last = status["last_delivery"]
    print(f"agent id:       {status['agent_id'] or '(not started yet)'}")
    print(f"enrolled:       {'yes' if status['enrolled'] else 'no'} ({status['server_url']})")
    print(f"spool depth:    {status['spool_depth']} events waiting, {status['dead_events']} refused")
    print(f"last delivery:  {_when(last['at']) if last else 'never'}")
    if status["policy_version"]:
        print(f"policy version: {status['policy_version']} ({status['policy_source']})")
    else:
        print(f"policy version: none: {status['policy_error']}")
    for path in status["extra_rule_files"]:
        print(f"extra rules:    {path}")
    print(f"indexed files:  {status['indexed_files']}")
    for folder in status["classified"]:
        print(f"classified:     {folder['path']} ({folder['level']}{', ' + folder['name'] if folder['name'] else ''})")
    for folder in status["egress_folders"]:
        print(f"egress folder:  {folder}")
    for root in status["mount_roots"]:
        print(f"mount root:     {root}")
    return EXIT_OK


def _when(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


if __name__ == "__main__":
    sys.exit(main())
