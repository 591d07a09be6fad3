"""Printing through CUPS is an egress: a real cupsd of the test's own, an employee's `lp`, the
agent watching that cupsd's spool, the alert read from the collector's API."""

from __future__ import annotations

import io
import subprocess
import time

import pytest

from tests.e2e.conftest import as_user, sha256
from tests.e2e.cups import QUEUE, Cupsd, job_id, missing
from tests.e2e.harness import Deployment, wait_for

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))

MARKED = "商业秘密 严禁外传\n泵叶轮设计说明 第三版\n本文件仅供内部使用。\n".encode()


def _pdf(title: str) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


DRAWING_PDF = _pdf("AC1032 pump impeller rev C")


@pytest.fixture
def cupsd():
    server = Cupsd()
    yield server
    server.close()


@pytest.fixture
def printing(tmp_path, cupsd):
    """A collector and an agent watching the test's cupsd spool; one classified PDF (core)."""
    drawings = tmp_path / "rnd" / "drawings"
    drawings.mkdir(parents=True)
    (drawings / "pump-impeller.pdf").write_bytes(DRAWING_PDF)
    d = Deployment(
        tmp_path,
        [(drawings, "core", "Product drawings")],
        agent_extra=f"  printing:\n    enabled: true\n    spool_dir: {cupsd.spool}",
    )
    d.drawings = drawings
    d.start_server()
    d.start_agent()
    wait_for(lambda: "watching print spool" in d.log("miwei-agent"), 10, what="the agent to watch the print spool")
    yield d
    d.close()


def _lp(cupsd: Cupsd, employee, data: bytes, *args: str) -> int:
    """The employee prints data (from stdin, as an application does) and gets the job id."""
    done = subprocess.run(as_user(employee, *cupsd.print_argv(*args)), input=data, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode(errors="replace") + cupsd.log()
    return job_id(done.stdout.decode())


def _print_events(d) -> list[dict]:
    return [e for e in d.all_pages("/api/v1/events", "events", type="egress.file") if e["egress"] == "printer"]


def test_printed_classified_pdf_alerts_with_printer_user_and_title(printing, cupsd, employee):
    d = printing
    started = time.monotonic()
    job = _lp(cupsd, employee, DRAWING_PDF, "-t", "pump impeller.pdf")
    [alert] = wait_for(
        lambda: d.alerts(category="classified-egress"), 60, 0.1, "a classified-egress alert for the print"
    )
    print(f"classified PDF printed to alert through the API: {time.monotonic() - started:.2f}s")
    alert = d.get(f"/api/v1/alerts/{alert['id']}")
    assert alert["severity"] == "critical"
    [event] = alert["events"]
    assert event["egress"] == "printer"
    assert event["sha256"] == sha256(DRAWING_PDF)  # the document as submitted, not the filters' output
    assert event["match"] == {"method": "exact", "similarity": 1.0}
    assert event["source_path"] == str(d.drawings / "pump-impeller.pdf")
    assert event["user"] == employee.pw_name
    details = event["details"]
    assert details["printer"] == QUEUE and details["app"] == QUEUE
    assert details["job_id"] == job
    assert details["title"] == "pump impeller.pdf"
    assert details["format"] == "application/pdf"
    assert details["user_from"] == "cups"
    assert QUEUE in alert["explanation"]


def test_printed_marked_document_alerts(printing, cupsd, employee):
    d = printing
    started = time.monotonic()
    _lp(cupsd, employee, MARKED, "-t", "impeller notes")
    [alert] = wait_for(lambda: d.alerts(category="marked-egress"), 60, 0.1, "a marked-egress alert for the print")
    print(f"marked document printed to alert through the API: {time.monotonic() - started:.2f}s")
    [event] = d.get(f"/api/v1/alerts/{alert['id']}")["events"]
    assert event["egress"] == "printer"
    assert event["sha256"] == sha256(MARKED)
    assert event["details"]["title"] == "impeller notes"
    assert event["details"]["format"] == "text/plain"
    assert event["user"] == employee.pw_name
    assert d.alerts(category="classified-egress") == []


def test_job_purged_at_once_is_still_read_from_the_held_descriptor(printing, cupsd, employee):
    """A job held and purged (`cancel -x`) the moment it is submitted: cupsd removes its data
    file and never saves its attributes, but the document was opened when cupsd received it."""
    d = printing
    started = time.monotonic()
    job = _lp(cupsd, employee, DRAWING_PDF, "-H", "hold", "-t", "gone")
    cupsd.admin("cancel", "-x", str(job))
    assert not list(cupsd.spool.glob(f"d{job:05d}-*")), "cupsd kept the purged job's document"
    [alert] = wait_for(
        lambda: d.alerts(category="classified-egress"), 60, 0.1, "a classified-egress alert for the purged job"
    )
    print(f"purged job to alert through the API: {time.monotonic() - started:.2f}s")
    [event] = d.get(f"/api/v1/alerts/{alert['id']}")["events"]
    assert event["egress"] == "printer"
    assert event["sha256"] == sha256(DRAWING_PDF)
    assert event["details"]["job_id"] == job
    assert not [x for x in event["detections"] if x["detector"] == "vanished"]
