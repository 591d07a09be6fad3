"""A module imported when first used, for the detectors' numpy paths.

numpy and the tables built with it (agent/content/ids/vector.py) add some 11 MB to a process. The
agent's main process runs the detectors only over file names and other short texts, which the
pure-Python scans read (identifiers.NUMPY_SCAN_CHARS); only an inspection worker reading a document
needs numpy. `np = lazy("numpy", globals(), "np")` binds the name to a stand-in that imports the
module on the first attribute asked and then puts the module itself in its place, so every later
use is a plain global look-up. Type annotations are strings (`from __future__ import annotations`)
and never ask."""

from __future__ import annotations

import importlib
from typing import Any


class _Lazy:
    __slots__ = ("_name", "_namespace", "_alias")

    def __init__(self, name: str, namespace: dict[str, Any], alias: str):
        self._name, self._namespace, self._alias = name, namespace, alias

    def __getattr__(self, attribute: str) -> Any:
        module = importlib.import_module(self._name)  # thread-safe: the import system's module lock
        self._namespace[self._alias] = module
        return getattr(module, attribute)


def lazy(name: str, namespace: dict[str, Any], alias: str) -> Any:
    """A stand-in for module `name`, bound as `alias` in `namespace` (a module's globals())."""
    return _Lazy(name, namespace, alias)
