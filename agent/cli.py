"""`miwei-agent`: run the agent, build the index, classify files, show status."""

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
from rules.cli import EXIT_FAILURE, EXIT_OK, config_option, configure_logging, dispatch


def main(argv: list[str] | None = None) -> int:
    return dispatch(_parser(), load_agent_config, argv)


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
    status = sub.add_parser("status", parents=[common], help="enrolment, spool depth, last delivery")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)
    return parser


def cmd_run(config: AgentConfig, args) -> int:
    from agent.app import AgentApp

    os.makedirs(os.path.join(config.state_dir, "logs"), mode=0o700, exist_ok=True)
    configure_logging(config.log_level, os.path.join(config.state_dir, "logs", "agent.log"))
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    app = AgentApp(config)
    try:
        logger.info("agent starting version={} agent_id={} server={}", __version__, app.agent_id, config.server_url)
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
    from agent.scan import scan_paths

    configure_logging("warning")
    worst = EXIT_OK
    for result in scan_paths(config, args.paths):
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            print(result["explanation"])
        if result.get("error"):
            worst = EXIT_FAILURE
    return worst


def cmd_status(config: AgentConfig, args) -> int:
    from agent.app import read_status

    status = read_status(config)
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
        return EXIT_OK
    last = status["last_delivery"]
    print(f"agent id:       {status['agent_id'] or '(not started yet)'}")
    print(f"enrolled:       {'yes' if status['enrolled'] else 'no'} ({status['server_url']})")
    print(f"spool depth:    {status['spool_depth']} events waiting, {status['dead_events']} refused")
    print(f"last delivery:  {_when(last['at']) if last else 'never'}")
    print(f"policy version: {status['policy_version']}")
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
