"""What the systemd unit runs before the agent, outside its sandbox: raise the inotify limits.

The agent raises them itself when it may (agent/limits.py); under the unit's
ProtectKernelTunables= it may not, so the same code runs here with full privileges first.
"""

from __future__ import annotations

import sys

from agent.limits import raise_inotify_limits


def main() -> int:
    in_force = raise_inotify_limits()
    print(" ".join(f"fs.inotify.{name}={value}" for name, value in sorted(in_force.items())) or "no inotify here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
