"""`miwei-agent`: run the agent, build the index, classify files, check rules, show status."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from loguru import logger

from agent import __version__
from agent.config import AgentConfig, load_agent_config
from rules.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, config_option, configure_logging, dispatch, report_invalid
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
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        default=default if os.environ.get("MIWEI_CONFIG") or os.path.exists(default) else None,
        help="config file whose agent.rules are checked too (default ./config.yaml or $MIWEI_CONFIG, when present)",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="miwei-agent", description="MiWei endpoint agent")
    parser.add_argument("--version", action="version", version=f"miwei-agent {__version__}")
    common = config_option()
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", parents=[common], help="run the agent in the foreground")
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
    return parser


def cmd_run(config: AgentConfig, args) -> int:
    from agent.app import AgentApp
    from agent.policy import PolicyStore, check_local_sources, read_local_sources

    try:  # the extra rule files are checked before anything is created or started
        local_sources = read_local_sources(config.rules)
        check_local_sources(local_sources)
    except InvalidInput as exc:
        return report_invalid(exc)
    os.umask(0o077)  # state files hold classified paths, hashes and events: ours alone
    os.makedirs(os.path.join(config.state_dir, "logs"), mode=0o700, exist_ok=True)
    configure_logging(config.log_level, os.path.join(config.state_dir, "logs", "agent.log"))
    rules = PolicyStore(config.state_dir, local_sources)
    rules.load()  # the cached policy, else the default packs: never no rules
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    app = AgentApp(config, rules)
    try:
        logger.info("agent starting version={} agent_id={!r} server={!r}", __version__, app.agent_id, config.server_url)
        app.start()
        logger.info("agent ready")
        stopping.wait()
    except Exception:
        logger.exception("agent failed")
        return EXIT_FAILURE
    finally:
        app.stop()
    return EXIT_OK


def cmd_index(config: AgentConfig, args) -> int:
    from tqdm import tqdm

    from agent.index import FingerprintIndex

    configure_logging("warning")
    os.umask(0o077)  # the index holds classified paths and hashes: ours alone
    index = FingerprintIndex(config.index_path, config.classified)
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
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


if __name__ == "__main__":
    sys.exit(main())
