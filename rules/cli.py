"""What both command lines share: exit codes, error printing, logging set-up."""

from __future__ import annotations

import sys

from loguru import logger

from rules.errors import InvalidInput

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


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
