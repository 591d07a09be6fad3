"""The machine's own limits, measured in the same run as the figure they are compared with.

- read_files: the bytes read and thrown away (what `cat` to /dev/null does): nothing reads faster.
- sha256_files: OpenSSL SHA-256 through `hashlib.file_digest`, one core, in a fresh process.
  coreutils' sha256sum is several times slower here and would flatter us: never the baseline.
- InotifyWatch: raw inotify delivery, `inotifywait -m -r` (inotify-tools), or a ctypes reader
  (bench/rawinotify.py) doing the same when inotify-tools is not installed.
- bare_executemany: the events rows inserted with the driver's executemany, one transaction per
  batch, into a table with the server's columns and indexes, with the server's durability settings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

READ_CHUNK = 1 << 16


def read_files(paths: Sequence[str]) -> float:
    """Seconds to read every file and throw the bytes away, as `cat FILES > /dev/null` does, but
    in this process: spawning cat would cost more than reading a handful of documents."""
    buf = bytearray(READ_CHUNK)
    started = time.perf_counter()
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass
    return time.perf_counter() - started


_HASH_ALL = """
import hashlib, sys, time
paths = sys.stdin.read().split("\\0")[:-1]
started = time.perf_counter()
for path in paths:
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):
            hashlib.file_digest(f, "sha256").hexdigest()
        else:  # Python 3.10
            h = hashlib.sha256()
            while chunk := f.read(1 << 16):
                h.update(chunk)
print(time.perf_counter() - started)
"""


def sha256_files(paths: Sequence[str]) -> float:
    """Seconds OpenSSL SHA-256 (hashlib.file_digest) needs for the files, timed inside a fresh
    process so that neither interpreter start-up nor our own heap is counted."""
    done = subprocess.run(
        [sys.executable, "-c", _HASH_ALL], input="".join(p + "\0" for p in paths), capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip())


def inotify_tool() -> tuple[list[str], str]:
    """The raw inotify reader's command prefix (add the folder) and what it is, for the report."""
    tool = shutil.which("inotifywait")
    if tool:
        return [tool, "-m", "-r", "-e", "close_write,moved_to", "--format", "%w%f"], "inotifywait -m -r (inotify-tools)"
    return (
        [sys.executable, "-m", "bench.rawinotify"],
        "a ctypes inotify reader (bench/rawinotify.py): inotify-tools is not installed, so not inotifywait",
    )


class InotifyWatch:
    """A raw inotify reader over a folder tree, as a separate process; records when each path arrived."""

    def __init__(self, folder: str):
        command, self.what = inotify_tool()
        self.proc = subprocess.Popen(
            [*command, folder], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=os.path.dirname(os.path.dirname(__file__))
        )
        self.arrivals: dict[str, float] = {}
        self.overflowed = False
        self._lock = threading.Lock()
        deadline = time.monotonic() + 120
        for line in self.proc.stderr:  # inotifywait says when every folder is watched
            if b"Watches established" in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.what} did not start")
        else:
            raise RuntimeError(f"{self.what} exited: {self.proc.wait()}")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        for line in self.proc.stdout:
            now = time.monotonic()
            path = os.fsdecode(line.rstrip(b"\n"))
            with self._lock:
                if path == "OVERFLOW":
                    self.overflowed = True
                self.arrivals.setdefault(path, now)

    def arrived(self, path: str) -> float | None:
        with self._lock:
            return self.arrivals.get(path)

    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()


# --- bare executemany into the events table -----------------------------------------------------

COLUMNS = ("id", "type", "ts", "received_at", "agent_id", "host", "user", "path", "size", "sha256", "level",
           "source_path", "severity", "body", "agent_seq", "chain_hash", "prev_hash")


@dataclass(frozen=True)
class BareInsert:
    batch_seconds: tuple[float, ...]
    rows: int

    @property
    def rows_per_s(self) -> float:
        return self.rows / sum(self.batch_seconds)


def bare_executemany(url: str, rows: list[tuple], batch_size: int) -> BareInsert:
    """Insert `rows` (values in COLUMNS order) in batches, one transaction each, into a fresh
    events table made from the server's own schema (same columns, unique id, same indexes)."""
    from server.database import make_engine
    from server.schema import events

    engine = make_engine(url)  # SQLite: WAL and synchronous=FULL, as the collector runs it
    try:
        events.drop(engine, checkfirst=True)
        events.create(engine)
        raw = engine.raw_connection()
        try:
            sqlite = engine.dialect.name == "sqlite"
            mark = "?" if sqlite else "%s"
            names = ", ".join(f'"{c}"' for c in COLUMNS)
            sql = f"INSERT INTO events ({names}) VALUES ({', '.join([mark] * len(COLUMNS))})"
            timings = []
            for i in range(0, len(rows), batch_size):
                batch = rows[i : i + batch_size]
                started = time.perf_counter()
                cur = raw.cursor()
                if sqlite:
                    cur.execute("BEGIN IMMEDIATE")  # the driver is in autocommit mode (make_engine)
                cur.executemany(sql, batch)
                if sqlite:
                    cur.execute("COMMIT")
                else:
                    raw.commit()
                cur.close()
                timings.append(time.perf_counter() - started)
        finally:
            raw.close()
        return BareInsert(tuple(timings), len(rows))
    finally:
        engine.dispose()


def event_rows(events: list[dict], agent_id: str, sqlite: bool) -> list[tuple]:
    """The rows the collector stores for these event bodies (body as JSON, received now), with the
    chain columns (seq, digest, prev_hash) of chained events, as the collector fills them."""
    from datetime import datetime

    from rules.events import chain_digest

    now = datetime.now(UTC)
    received = now.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else now
    return [
        (e["id"], e["type"], e["ts"], received, agent_id, e.get("host"), e.get("user"), e.get("path"), e.get("size"),
         e.get("sha256"), e.get("level"), e.get("source_path"), e.get("severity"),
         json.dumps(dict(e, agent_id=agent_id), ensure_ascii=False, separators=(",", ":")), e.get("seq"),
         chain_digest(e) if e.get("seq") is not None else None, e.get("prev_hash"))
        for e in events
    ]


def scratch_dir(prefix: str) -> str:
    """A folder under the machine's temp dir; the caller removes it."""
    return tempfile.mkdtemp(prefix=f"miwei-bench-{prefix}-")
