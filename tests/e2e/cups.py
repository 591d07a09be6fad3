"""A real cupsd of the test's own: its config, spool, state and logs in a temporary folder, a
unix socket for the test (as root) and a loopback port for the employee, a PDF printer queue.

Nothing of the system's CUPS is touched: `cupsd -f -c <conf> -s <cups-files.conf>` runs in the
foreground under the test and is ended by it. The queue uses the cups-pdf driver's PPD
(printer-driver-cups-pdf) with a file:/dev/null device (FileDevice Yes): the cups-pdf backend
itself writes its PDFs under /var/spool/cups-pdf or the user's home, which a test must not do,
and what the agent reads is the document cupsd spools, not what the backend makes of it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.e2e.harness import free_port, wait_for

PDF_PPD = Path("/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd")
QUEUE = "pdf"


def missing() -> str | None:
    """Why a cupsd cannot be run here, or None."""
    if os.geteuid() != 0:
        return "cupsd with its own spool needs root"
    for tool in ("cupsd", "lp", "lpadmin", "cancel"):
        if not shutil.which(tool):
            return f"{tool} is missing (Debian package cups)"
    if not PDF_PPD.exists():
        return f"{PDF_PPD} is missing (Debian package printer-driver-cups-pdf)"
    return None


class Cupsd:
    """cupsd as a child process, with one queue named QUEUE; `close()` ends it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mwcups"))  # short: a unix socket path has 108 bytes
        self.spool = self.root / "spool"
        self.socket = self.root / "cups.sock"
        self.port = free_port()
        for name in ("conf", "spool/tmp", "state", "cache", "log"):
            (self.root / name).mkdir(parents=True)
        (self.root / "conf" / "cupsd.conf").write_text(
            "LogLevel info\n"
            f"Listen {self.socket}\n"
            f"Listen 127.0.0.1:{self.port}\n"
            "DefaultAuthType None\nWebInterface No\nBrowsing No\n"
            "PreserveJobFiles No\n"  # a document is removed as soon as its job ends
            "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n",
            encoding="utf-8",
        )
        (self.root / "conf" / "cups-files.conf").write_text(
            f"ServerRoot {self.root}/conf\nRequestRoot {self.spool}\nTempDir {self.spool}/tmp\n"
            f"StateDir {self.root}/state\nCacheDir {self.root}/cache\n"
            f"AccessLog {self.root}/log/access_log\nErrorLog {self.root}/log/error_log\n"
            f"PageLog {self.root}/log/page_log\nFileDevice Yes\n",
            encoding="utf-8",
        )
        self.proc = subprocess.Popen(
            ["cupsd", "-f", "-c", str(self.root / "conf/cupsd.conf"), "-s", str(self.root / "conf/cups-files.conf")],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "log" / "stderr", "wb"),  # noqa: SIM115 (closed with the process)
        )
        wait_for(self.socket.exists, 20, 0.05, "cupsd's socket")
        self.admin("lpadmin", "-p", QUEUE, "-E", "-v", "file:/dev/null", "-P", str(PDF_PPD))
        self.admin("cupsenable", QUEUE)
        self.admin("cupsaccept", QUEUE)

    def admin(self, tool: str, *args: str) -> str:
        done = subprocess.run([tool, "-h", str(self.socket), *args], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise AssertionError(f"{tool} failed: {done.stderr}\n{self.log()}")
        return done.stdout

    def print_argv(self, *args: str) -> list[str]:
        """`lp` to the queue over loopback (what an employee's process can reach)."""
        return ["lp", "-h", f"127.0.0.1:{self.port}", "-d", QUEUE, *args]

    def log(self) -> str:
        path = self.root / "log" / "error_log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def job_id(lp_output: str) -> int:
    """The job id `lp` printed: 'request id is pdf-3 (1 file(s))'."""
    found = re.search(rf"request id is {QUEUE}-(\d+)", lp_output)
    if not found:
        raise AssertionError(f"no job id in {lp_output!r}")
    return int(found[1])
