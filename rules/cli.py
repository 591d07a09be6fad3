"""What both command lines share: exit codes, error printing, logging set-up."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from loguru import logger

from rules.configfile import default_config_path
from rules.errors import InvalidInput

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what `cat`, `grep` or `yes` report when `| head` stops reading


class _ConfigGiven(argparse.Action):
    """Stores the path and notes that it was given, so dispatch can tell `-c` after the
    sub-command from the default."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        namespace.config_given = True


_DEFAULT_PATH = "<default config path>"


def config_option(default: str | None = _DEFAULT_PATH, help_text: str | None = None) -> argparse.ArgumentParser:
    """The `-c/--config` option every subcommand takes, as a parent parser (check-rules passes
    default None: it works without a config)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        action=_ConfigGiven,
        default=default_config_path() if default is _DEFAULT_PATH else default,
        help=help_text or "config file (default ./config.yaml or $MIWEI_CONFIG)",
    )
    common.set_defaults(config_given=False)  # present only on sub-commands that read a config
    return common


def add_config_before(parser: argparse.ArgumentParser) -> None:
    """`-c FILE` before the sub-command too (`miwei-agent -c FILE status`)."""
    parser.add_argument(
        "-c",
        "--config",
        dest="config_before",
        metavar="CONFIG",
        help="config file; also accepted after the sub-command",
    )


def dispatch(parser: argparse.ArgumentParser, load_config: Callable[[str], Any], argv: list[str] | None) -> int:
    """Parse arguments, load and check the config (exit 2 on any error), run the subcommand.

    `-c` may come before or after the sub-command; given in both places it is refused (exit 2)
    rather than one silently winning. A reader that stops early (`| head`) ends the command
    quietly with EXIT_BROKEN_PIPE instead of a BrokenPipeError traceback."""
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    before = getattr(args, "config_before", None)
    if before is not None and hasattr(args, "config_given"):  # commands without -c ignore it
        if args.config_given:
            print(
                f"{parser.prog}: error: -c/--config given twice ({before} before {args.command}, {args.config} after it); give it once",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        args.config = before
    try:
        config = load_config(args.config)
    except InvalidInput as exc:
        return report_invalid(exc)
    try:
        code = args.handler(config, args)
        sys.stdout.flush()  # a pipe's buffer is written here, not at exit where the error would escape
    except BrokenPipeError:
        quiet_stdout()
        return EXIT_BROKEN_PIPE
    return code


def quiet_stdout() -> None:
    """Point stdout at /dev/null so Python's own flush at exit cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


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
