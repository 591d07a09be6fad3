"""Fixtures shared by every test package."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import pytest

from tests import parallel, reliability

AGENT_THREADS = {"pipeline", "reporter", "media"}


@pytest.fixture
def small_ext4(tmp_path):
    """A fresh 64 MB ext4 loop-mounted for the test (the disk-full cases); skipped where it cannot be."""
    from tests.e2e import mounts

    why = mounts.unavailable("ext4")
    if why:
        pytest.skip(why)
    with mounts.scratch("ext4", tmp_path) as mountpoint:
        yield mountpoint


@pytest.fixture(autouse=True)
def no_system_signing_key(tmp_path_factory, monkeypatch):
    """A collector on PostgreSQL without server.signing_key_file keeps its key in the system state
    folder: in-process tests must not write /var/lib/miwei-server (a root-owned key left there broke
    the installed .deb's collector in tests/e2e/test_packages.py)."""
    import server.signing

    monkeypatch.setattr(server.signing, "SYSTEM_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every long-lived component must stop its threads: a test that leaks one fails."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and t.name in AGENT_THREADS]
    for t in leaked:
        t.join(2.0)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads left running: {still}"


# --- parallel runs: `make test` runs pytest-xdist with --dist loadgroup -------------------------

ROOT = Path(__file__).resolve().parents[1]
SERIAL = "system"  # the xdist group whose tests run one at a time, on one worker
# What makes a test share the machine, and why (docs/architecture.md, Tests, says the same).
SERIAL_DIRS = {"tests/e2e/": "loop and FUSE mounts, users mw*, /run/user, cupsd, dbus, dpkg's lock, real agents"}
SERIAL_MARKS = {"e2e": "starts miwei-agent, which watches every mount on the machine"}
SERIAL_FIXTURES = {
    "deployment": "a real miwei-agent, which watches every mount on the machine",
    "employee": "creates and removes a user mw*",
    "small_ext4": "loop-mounts an ext4 image",
}
SERIAL_MODULES = {
    "tests/agent/test_service.py": "runs systemd-analyze verify",
    "tests/server/test_service.py": "runs systemd-analyze verify",
}


def serial_reason(item: pytest.Item) -> str | None:
    """Why the test must not run beside another that shares the machine, or None."""
    path = item.nodeid.split("::", 1)[0]
    for folder, why in SERIAL_DIRS.items():
        if path.startswith(folder):
            return why
    if path in SERIAL_MODULES:
        return SERIAL_MODULES[path]
    for name, why in SERIAL_MARKS.items():
        if item.get_closest_marker(name):
            return why
    for name, why in SERIAL_FIXTURES.items():
        if name in getattr(item, "fixturenames", ()):
            return why
    return None


def _module_fixture_group(item: pytest.Item) -> str | None:
    """A module whose own module- or session-scoped fixture the test uses (a PostgreSQL cluster, a
    built corpus) stays on one worker, so the fixture is set up once, not once per worker."""
    info = getattr(item, "_fixtureinfo", None)
    module = item.nodeid.split("::", 1)[0]
    for defs in getattr(info, "name2fixturedefs", {}).values():
        if defs and defs[-1].scope != "function" and defs[-1].baseid == module:
            return module
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(session, config, items):
    groups = {}
    for item in items:
        _note_reliability(item)
        marker = item.get_closest_marker("xdist_group")
        if marker:  # a test that names its group keeps it (one group each: xdist joins several into a new one)
            groups[item.nodeid] = str(marker.args[0] if marker.args else marker.kwargs.get("name", "default"))
            continue
        group = SERIAL if serial_reason(item) else _module_fixture_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
            groups[item.nodeid] = group
    parallel.publish(config, groups)  # the controller's scheduler reads them (tests/parallel.py)
    for folder in (*SERIAL_DIRS, *SERIAL_MODULES):  # a renamed file must not quietly run in parallel
        if config.rootpath == ROOT and not (ROOT / folder).exists():
            raise pytest.UsageError(f"tests/conftest.py names {folder} to run serially, and it does not exist")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    parallel.configure_node(node)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    return parallel.make_scheduler(config, log)


def pytest_unconfigure(config):
    parallel.cleanup(config)


# --- docs/reliability.md from the run (tests/reliability.py) ---------------------------------
#
# Each marked test's fields travel on its reports (user_properties), so the process that writes the
# page needs no collection of its own: under xdist that is the controller, which collects nothing.
# The workers also hand back the whole marked collection (workeroutput), so a test that never ran
# (the run stopped first) still shows as 'not run'. Only the controller, or a run without xdist,
# writes the page.

PROPERTY = "reliability"
_reliability: dict[str, reliability.Result] = {}
_problems: list[str] = []
_crashed: dict[str, str] = {}  # node id -> why, for tests whose worker died under them


def _without_group(nodeid: str) -> str:
    """The node id without the `@group` xdist appends under --dist loadgroup (as xdist splits it)."""
    at = nodeid.rfind("@")
    return nodeid[:at] if at > nodeid.rfind("]") else nodeid


def _note_reliability(item: pytest.Item) -> None:
    marker = item.get_closest_marker("reliability")
    if marker is None:
        return
    try:
        fields = reliability.marker_fields(item.nodeid, marker.kwargs)
    except ValueError as exc:
        _problems.append(str(exc))
        return
    item.user_properties.append((PROPERTY, {"nodeid": item.nodeid, **fields}))


def pytest_collection_finish(session):
    """Every marked test that will run, checked; each starts as 'not run' until it reports."""
    if _problems:
        raise pytest.UsageError("\n".join(_problems))
    marked = {}
    for item in session.items:  # after deselection (-k, -m): only what this run will run
        for name, value in item.user_properties:
            if name == PROPERTY:
                marked[value["nodeid"]] = value
    if hasattr(session.config, "workerinput"):
        session.config.workeroutput[PROPERTY] = list(marked.values())
    else:
        for value in marked.values():
            _reliability.setdefault(value["nodeid"], reliability.Result(**value))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """An xdist worker's collection: its marked tests that never reported stay 'not run'."""
    for value in getattr(node, "workeroutput", {}).get(PROPERTY, ()):
        _reliability.setdefault(value["nodeid"], reliability.Result(**value))


def pytest_runtest_logreport(report):
    """A case's result: a failure in any phase fails it; a skip in setup or call skips it."""
    fields = next((value for name, value in report.user_properties if name == PROPERTY), None)
    if fields is None:
        if report.failed:  # xdist's report of a worker that died in a test carries no properties
            _crashed[_without_group(report.nodeid)] = reliability.failure_reason(report.longrepr)
        return
    nodeid = fields["nodeid"]  # xdist's report says tests/x.py::test_y@system for a grouped test
    result = _reliability.setdefault(nodeid, reliability.Result(**fields))
    if report.failed:
        if result.status != "failed":
            _reliability[nodeid] = dataclasses.replace(
                result, status="failed", reason=reliability.failure_reason(report.longrepr)
            )
    elif report.skipped and result.status != "failed":
        _reliability[nodeid] = dataclasses.replace(
            result, status="skipped", reason=reliability.skip_reason(report.longrepr)
        )
    elif report.when == "call" and report.passed and result.status == "not run":
        _reliability[nodeid] = dataclasses.replace(result, status="passed")


def pytest_sessionfinish(session, exitstatus):
    """With MIWEI_RELIABILITY_DOC=1 (`make test`), rewrite docs/reliability.md's tables: once, by
    the controller (or the only process), never by an xdist worker."""
    if os.environ.get("MIWEI_RELIABILITY_DOC") != "1" or hasattr(session.config, "workerinput") or not _reliability:
        return
    for nodeid, reason in _crashed.items():  # known by now from the other workers' collections
        if nodeid in _reliability:
            _reliability[nodeid] = dataclasses.replace(_reliability[nodeid], status="failed", reason=reason)
    if reliability.write(_reliability.values(), reliability.current_run()):
        session.config.get_terminal_writer().line(f"reliability: {reliability.DOC} rewritten from this run")
