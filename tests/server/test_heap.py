"""server/heap.py: after start-up the collector's heap is frozen and its youngest generation sized
for a batch. Checked in a child process: the settings are the whole process's."""

from __future__ import annotations

import subprocess
import sys

from server import heap


def test_settle_freezes_the_heap_and_sizes_the_youngest_generation_only():
    script = (
        "import gc; default = gc.get_threshold(); from server import heap; heap.settle(); "
        "print(gc.get_freeze_count(), *gc.get_threshold(), *default)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60).stdout.split()
    frozen, young, middle, old, _, default_middle, default_old = map(int, out)
    assert frozen > 1000  # the modules and what they made
    assert young == heap.YOUNG_OBJECTS > 700  # Python's default, which ran some fifteen collections a batch
    assert (middle, old) == (default_middle, default_old)
