"""A recording stand-in for systemctl and launchctl: what the installers asked, in order."""

from __future__ import annotations

import subprocess


class FakeRunner:
    def __init__(self, fail: dict[str, int] | None = None, stderr: str = ""):
        self.calls: list[list[str]] = []
        self.fail = fail or {}  # subcommand -> exit code, e.g. {"daemon-reload": 1}
        self.stderr = stderr

    def __call__(self, argv) -> subprocess.CompletedProcess:
        argv = list(argv)
        self.calls.append(argv)
        code = self.fail.get(argv[1], 0) if len(argv) > 1 else 0
        return subprocess.CompletedProcess(argv, code, "", self.stderr if code else "")

    def subcommands(self) -> list[str]:
        return [" ".join(call[1:]) for call in self.calls]
