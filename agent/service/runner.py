"""Run the agent until told to stop: what `miwei-agent run` and the Windows service both do.

The caller decides what "stop" is (SIGTERM/SIGINT in a terminal or under systemd and launchd,
the service control manager's stop request on Windows) and sets `stopping`. The agent may also
ask to be restarted (far over its memory cap, agent/selfwatch.py): it stops cleanly and the exit
code is RESTART_EXIT_CODE (75), which the service manager answers by starting it again.
"""

from __future__ import annotations

import os
import sys
import threading

from loguru import logger

from agent import __version__
from agent.config import AgentConfig
from agent.selfwatch import RESTART_EXIT_CODE
from rules.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, configure_logging, report_invalid
from rules.errors import InvalidInput


def check_rule_files(config: AgentConfig) -> None:
    """The extra rule files must load before anything is created or started; raises InvalidInput."""
    from agent.policy import check_local_sources, read_local_sources

    check_local_sources(read_local_sources(config.rules))


def run_agent(config: AgentConfig, stopping: threading.Event, config_path: str | None = None, service: bool = False) -> int:
    """Start the agent, wait for `stopping`, stop it cleanly; an exit code (rules.cli).

    `config_path`: the config file, which the agent watches for local changes (agent/integrity.py).
    `service`: run by the service install-service wrote (`run --service`): the config and the code
    must be root's alone (agent/trust.py)."""
    from agent.app import AgentApp
    from agent.policy import PolicyStore, check_local_sources, read_local_sources
    from agent.trust import UntrustedPath, check_config, prepare_state_dir

    try:  # the extra rule files are checked before anything is created or started
        local_sources = read_local_sources(config.rules)
        check_local_sources(local_sources)
    except InvalidInput as exc:
        return report_invalid(exc)
    os.umask(0o077)  # state files hold classified paths, hashes and events: ours alone
    try:  # before the first file is written: the token must not go where another user points
        check_config(config_path, config.enroll_secret_inline, service)
        prepare_state_dir(config.state_dir)
    except (UntrustedPath, OSError) as exc:
        print(f"miwei-agent: refused: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    os.makedirs(os.path.join(config.state_dir, "logs"), mode=0o700, exist_ok=True)
    configure_logging(config.log_level, os.path.join(config.state_dir, "logs", "agent.log"))
    rules = PolicyStore(config.state_dir, local_sources)
    rules.load()  # the cached policy, else the default packs: never no rules
    restart: list[str] = []

    def request_restart(why: str) -> None:  # far over the memory cap: stop cleanly, start again
        restart.append(why)
        stopping.set()

    app = AgentApp(config, rules, config_path, on_restart=request_restart)
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
    return RESTART_EXIT_CODE if restart else EXIT_OK
