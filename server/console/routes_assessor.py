"""The assessor's report page: a period, a format, a download (server/assessor.py).

Admins and analysts alike; the report is in the viewer's language and on the firm's clock, and
every download is written to the audit log (export.assessor) with the file's SHA-256.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from loguru import logger

from server import assessor, firmtime
from server.console.i18n import gettext_for
from server.console.sessions import ConsoleUser
from server.console.web import PREFIX, Console

MAX_TEXT = 40


def _last_month(now: datetime, zone: str) -> tuple[str, str]:
    """The default period: last month on the firm's calendar."""
    today = firmtime.local(now, zone).date()
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1).isoformat(), last.isoformat()


def register(router: APIRouter, console: Console) -> None:
    def page(
        request: Request, user: ConsoleUser, start: str, until: str, fmt: str, error: str = "", status_code: int = 200
    ) -> Response:
        return console.render(
            request,
            "assessor.html",
            user,
            status_code=status_code,
            start=start,
            until=until,
            fmt=fmt,
            error=error,
            formats=assessor.FORMATS,
        )

    @router.get(PREFIX + "/assessor", include_in_schema=False)
    def assessor_page(request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        start, until = _last_month(request.app.state.store.clock(), console.zone(request))
        return page(request, user, start, until, "xlsx")

    @router.get(PREFIX + "/assessor/export", include_in_schema=False)
    def assessor_report(
        request: Request,
        start: str = Query("", alias="from", max_length=MAX_TEXT),
        until: str = Query("", max_length=MAX_TEXT),
        fmt: str = Query("xlsx", alias="format", pattern="^(xlsx|pdf)$"),
        user: ConsoleUser = Depends(console.user),
    ) -> Response:
        config, store = request.app.state.config, request.app.state.store
        zone = firmtime.zone(config.timezone)
        gettext = gettext_for(console.translations, console.lang(request))
        try:
            period = assessor.period_of(start, until, zone)
        except ValueError:
            return page(
                request,
                user,
                start,
                until,
                fmt,
                gettext(
                    "The period is not valid: give two days, the first not after the last (e.g. 2026-01-01 and 2026-03-31)."
                ),
                422,
            )
        actor = f"console:{user.name}"
        out = assessor.export(store, period, fmt, console.lang(request), zone, actor, config.agent_offline_s)
        if out.pdf_missing:
            return page(
                request,
                user,
                start,
                until,
                fmt,
                gettext(
                    "No Chinese font is installed on the collector, so the PDF cannot be made (Debian: apt-get install fonts-noto-cjk). The XLSX can."
                ),
                503,
            )
        logger.info("assessor report exported format={} sha256={} by={!r}", fmt, out.sha256, actor)
        headers = {"Content-Disposition": f'attachment; filename="{out.filename}"'}
        return Response(out.data, media_type=out.media_type, headers=headers)
