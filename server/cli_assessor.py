"""`miwei-server assessor-report`: the period report a 商业秘密保护示范点 assessment asks for (server/assessor.py)."""

from __future__ import annotations

import argparse
import os
import sys

from rules.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    report = sub.add_parser(
        "assessor-report", parents=[common],
        help="write the assessor's period report (register, devices, coverage, alerts, handling times, rules) as XLSX or PDF",
    )  # fmt: skip
    report.add_argument(
        "--from", dest="start", required=True, help="first day (YYYY-MM-DD, or a date-time) on the firm's clock"
    )
    report.add_argument(
        "--until", required=True, help="last day, included (YYYY-MM-DD; a date-time: up to it, excluded)"
    )
    report.add_argument("--out", required=True, help="FILE.xlsx or FILE.pdf: the format follows the extension")
    report.add_argument("--lang", choices=("zh", "en"), help="the report's language (default: server.language)")
    report.set_defaults(handler=cmd_assessor_report)


def cmd_assessor_report(config, args) -> int:
    from server import assessor
    from server.database import make_engine, migrate
    from server.firmtime import zone
    from server.store import Store

    fmt = os.path.splitext(args.out)[1].lower().lstrip(".")
    if fmt not in assessor.FORMATS:
        print("error: --out must end in .xlsx or .pdf", file=sys.stderr)
        return EXIT_BAD_INPUT
    firm = zone(config.timezone)
    try:
        period = assessor.period_of(args.start, args.until, firm)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    engine = make_engine(config.database)
    migrate(engine)
    store = Store(engine)
    out = assessor.export(store, period, fmt, args.lang or config.language, firm, "cli", config.agent_offline_s)
    if out.pdf_missing:
        from server.pdffont import NO_FONT

        print(f"error: {NO_FONT}; the XLSX can be made (--out FILE.xlsx)", file=sys.stderr)
        return EXIT_FAILURE
    with open(args.out, "wb") as f:
        f.write(out.data)
    print(f"{args.out}: {len(out.data)} bytes, sha256 {out.sha256} (in the audit log as export.assessor)")
    return EXIT_OK
