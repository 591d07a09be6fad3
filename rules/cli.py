"""What both command lines share: exit codes, error printing, logging set-up."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from loguru import logger

from rules.configfile import default_config_path
from rules.errors import InvalidInput

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def config_option() -> argparse.ArgumentParser:
    """The `-c/--config` option every subcommand takes, as a parent parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", default=default_config_path(), help="config file (default ./config.yaml or $MIWEI_CONFIG)"
    )
    return common


def dispatch(parser: argparse.ArgumentParser, load_config: Callable[[str], Any], argv: list[str] | None) -> int:
    """Parse arguments, load and check the config (exit 2 on any error), run the subcommand."""
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        config = load_config(args.config)
    except InvalidInput as exc:
        return report_invalid(exc)
    return args.handler(config, args)


def report_invalid(exc: InvalidInput) -> int:
    for error in exc.errors:
        print(str(error), file=sys.stderr)
    return EXIT_BAD_INPUT


def configure_logging(level: str, log_file: str | None = None) -> None:
    """Configure loguru once, in the entry point: stderr, plus a rotating file when given."""
    logger.remove()
    fmt = "{time:YYYY-MM-DD HH:mm:ss.SSS} {level:<7} {name}: {message}"
    logger.add(sys.stderr, level=level.upper(), format=fmt, backtrace=False, diagnose=False)
    if log_file:
        logger.add(log_file, level=level.upper(), format=fmt, rotation="20 MB", retention=10, diagnose=False)
