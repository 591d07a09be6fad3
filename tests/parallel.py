"""The groups of `make test`'s parallel run (pytest-xdist), carried to the controller by hand.

`make test` runs `pytest -n 3 --dist loadgroup`: the tests in one group (tests/conftest.py puts
those that share the machine in `system`) run one at a time on one worker. xdist's own loadgroup
learns a test's group from a suffix it appends to the node id in the worker (`item._nodeid`),
which pytest 9.2's node ids no longer read: every test would run anywhere, e2e tests side by side.
So each worker writes the group of every test it collected to a file in a folder the controller
names (`workerinput`), and the controller's scheduler, xdist's load-scope scheduler with the
group as the scope, reads them. A test without a group is a scope of its own, as in loadgroup.
When xdist's suffix does arrive, the suffix is honoured the same way.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

KEY = "miwei_groups_dir"
_folder = pytest.StashKey[str]()


def configure_node(node) -> None:
    """Controller: tell a starting worker where to write its groups."""
    config = node.config
    if _folder not in config.stash:
        config.stash[_folder] = tempfile.mkdtemp(prefix="miwei-xdist-groups-")
    node.workerinput[KEY] = config.stash[_folder]


def publish(config: pytest.Config, groups: dict[str, str]) -> None:
    """Worker: write {node id: group} where the controller reads it (nothing without xdist)."""
    folder = getattr(config, "workerinput", {}).get(KEY)
    if not folder:
        return
    path = Path(folder) / f"{config.workerinput['workerid']}.json"
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(groups), encoding="utf-8")
    partial.replace(path)


def cleanup(config: pytest.Config) -> None:
    folder = config.stash.get(_folder, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def make_scheduler(config: pytest.Config, log):
    """Controller, with --dist loadgroup: the scheduler that keeps each group on one worker."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):  # xdist's own suffix, where it works
                return nodeid.rsplit("@", 1)[-1]
            if self.groups is None:  # every worker has collected when the schedule is made
                self.groups = {}
                folder = config.stash.get(_folder, None)
                for path in sorted(Path(folder).glob("*.json")) if folder else ():
                    self.groups.update(json.loads(path.read_text(encoding="utf-8")))
            return self.groups.get(nodeid, nodeid)

    return GroupScheduling(config, log)
