"""The Windows service: its settings and the order of service-control calls, with a fake pywin32
on any OS; the pywin32 service class itself only where pywin32 is installed."""

from __future__ import annotations

import importlib.util
import threading

import pytest

from agent.service import ServiceError, ServiceSpec, windows
from agent.service.windows import Recovery, WindowsService, check_interpreter, install_arguments

SPEC = ServiceSpec(
    command=(r"C:\Program Files\Python312\Scripts\miwei-agent.exe", "run", "--config", r"C:\ProgramData\MiWei\config.yaml"),
    config_path=r"C:\ProgramData\MiWei\config.yaml",
    state_dir=r"C:\ProgramData\MiWei\state",
)
HAS_PYWIN32 = importlib.util.find_spec("win32serviceutil") is not None


class FakeScm:
    """Records the calls WindowsService makes through Pywin32Api."""

    def __init__(self, installed=False, refuse: str | None = None):
        self.installed, self.refuse = installed, refuse
        self.calls: list[tuple] = []

    def _call(self, *call):
        self.calls.append(call)
        if call[0] == self.refuse:
            raise OSError(5, "OpenSCManager", "Access is denied.")

    def exists(self):
        return self.installed

    def install(self, arguments):
        self._call("install", arguments["serviceName"], arguments["pythonClassString"], arguments["startType"])
        self.installed = True

    def update(self, arguments):
        self._call("update", arguments["serviceName"])

    def set_option(self, name, value):
        self._call("set_option", name, value)

    def set_recovery(self, actions):
        self._call("set_recovery", actions["ResetPeriod"], tuple(actions["Actions"]))

    def start(self):
        self._call("start")

    def stop(self):
        self._call("stop")

    def remove(self):
        self._call("remove")
        self.installed = False


def _service(scm, prefix="C:/Python312"):
    return WindowsService(api=scm, prefix=prefix, base_prefix="C:/Python312")


def test_recovery_restarts_after_5_5_and_60_seconds_and_resets_daily():
    assert Recovery().failure_actions() == {
        "ResetPeriod": 86400,
        "RebootMsg": "",
        "Command": "",
        "Actions": [(1, 5000), (1, 5000), (1, 60000)],
    }
    assert Recovery().sc_arguments() == [
        "sc.exe", "failure", "MiWeiAgent", "reset=", "86400", "actions=", "restart/5000/restart/5000/restart/60000"
    ]


def test_the_service_is_hosted_by_pywin32_and_starts_automatically():
    assert install_arguments() == {
        "pythonClassString": "agent.service.windows.MiWeiService",
        "serviceName": "MiWeiAgent",
        "displayName": "MiWei agent",
        "startType": 2,
        "description": windows.DESCRIPTION,
    }


def test_install_registers_the_config_path_recovery_then_starts():
    scm = FakeScm()
    _service(scm).install(SPEC)
    assert scm.calls == [
        ("install", "MiWeiAgent", "agent.service.windows.MiWeiService", 2),
        ("set_option", "config", r"C:\ProgramData\MiWei\config.yaml"),
        ("set_recovery", 86400, ((1, 5000), (1, 5000), (1, 60000))),
        ("start",),
    ]


def test_installing_over_an_existing_service_stops_and_updates_it():
    scm = FakeScm(installed=True)
    _service(scm).install(SPEC, start=False)
    assert [c[0] for c in scm.calls] == ["stop", "update", "set_option", "set_recovery"]


def test_a_virtual_environment_is_refused_before_anything_is_registered():
    scm = FakeScm()
    with pytest.raises(ServiceError, match="virtual environment"):
        _service(scm, prefix=r"C:\miwei\.venv").install(SPEC)
    assert scm.calls == []
    check_interpreter("C:/Python312", "C:/Python312")


def test_access_denied_says_to_elevate():
    with pytest.raises(ServiceError, match="Access is denied.*elevated prompt"):
        _service(FakeScm(refuse="install")).install(SPEC)


def test_uninstall_stops_and_removes_or_says_there_is_nothing():
    scm = FakeScm(installed=True)
    _service(scm).uninstall()
    assert scm.calls == [("stop",), ("remove",)]
    assert _service(FakeScm()).uninstall() == ["MiWeiAgent is not installed: nothing to remove"]


def test_print_shows_the_service_settings_without_the_secret():
    text = WindowsService(api=FakeScm()).render(SPEC)
    assert "MiWeiAgent" in text and r"config = C:\ProgramData\MiWei\config.yaml" in text
    assert "sc.exe failure MiWeiAgent reset= 86400 actions= restart/5000/restart/5000/restart/60000" in text


@pytest.mark.skipif(HAS_PYWIN32, reason="pywin32 is installed: the missing-pywin32 message cannot be seen")
def test_without_pywin32_the_module_imports_and_says_what_to_install():
    assert windows.win32serviceutil is None and not hasattr(windows, "MiWeiService")
    with pytest.raises(ServiceError, match="pywin32 is not installed: pip install pywin32"):
        WindowsService(prefix="C:/P", base_prefix="C:/P").install(SPEC)


def test_the_service_run_refuses_a_broken_config(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("agent:\n  server_url: nowhere\n")
    with pytest.raises(ServiceError, match="(?s)the config does not load:\n.*agent.server_url: not an http"):
        windows.run_from_option(str(config), threading.Event())


@pytest.mark.skipif(not HAS_PYWIN32, reason="pywin32 is not installed (Windows only)")
def test_the_pywin32_service_class_is_named_as_installed():
    assert windows.MiWeiService._svc_name_ == "MiWeiAgent"
    assert f"{windows.MiWeiService.__module__}.{windows.MiWeiService.__name__}" == install_arguments()["pythonClassString"]
