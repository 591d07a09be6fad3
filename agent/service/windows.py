"""The agent as a Windows service through pywin32, with recovery actions that restart it.

pythonservice.exe (pywin32) hosts `MiWeiService`, which runs the agent in-process and stops it
cleanly on the service control manager's stop request. The config path is kept in the service's
registry parameters (a custom option), never the enrolment secret. The calls into pywin32 go
through `Pywin32Api`, so the order of operations is tested on any OS with a fake; the service
class exists only where pywin32 is installed.

pywin32 services do not run from a virtual environment (pythonservice.exe cannot find the venv's
packages; pywin32 issues #1450, #1463), so install MiWei into a machine-wide Python.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

from agent.service import ServiceError, ServiceSpec

try:  # pywin32 exists on Windows only; everything below the class line works without it
    import servicemanager
    import win32service
    import win32serviceutil
except ImportError:
    servicemanager = win32service = win32serviceutil = None

SERVICE_NAME = "MiWeiAgent"
DISPLAY_NAME = "MiWei agent"
DESCRIPTION = "MiWei endpoint agent: watches classified folders and removable media, reports to the collector"
CLASS_STRING = "agent.service.windows.MiWeiService"
CONFIG_OPTION = "config"
# winsvc.h values, so the settings are built and tested without pywin32
SERVICE_AUTO_START = 2
SC_ACTION_NONE = 0
SC_ACTION_RESTART = 1
SERVICE_CONFIG_FAILURE_ACTIONS = 2
SERVICE_CONFIG_FAILURE_ACTIONS_FLAG = 4
RESTART_DELAYS_S = (5, 5, 60)  # the last one repeats for every later failure
RESET_AFTER_S = 86_400  # a day without failure starts the count again


@dataclass(frozen=True)
class Recovery:
    """What the service control manager does when the service fails."""

    reset_s: int = RESET_AFTER_S
    delays_s: tuple[int, ...] = RESTART_DELAYS_S

    def failure_actions(self) -> dict:
        """The SERVICE_FAILURE_ACTIONS value for ChangeServiceConfig2 (pywin32's dict form)."""
        return {
            "ResetPeriod": self.reset_s,
            "RebootMsg": "",
            "Command": "",
            "Actions": [(SC_ACTION_RESTART, delay * 1000) for delay in self.delays_s],
        }

    def sc_arguments(self) -> list[str]:
        """The same settings as `sc.exe failure` takes them, for --print and for scripts."""
        actions = "/".join(f"restart/{delay * 1000}" for delay in self.delays_s)
        return ["sc.exe", "failure", SERVICE_NAME, "reset=", str(self.reset_s), "actions=", actions]


def check_interpreter(prefix: str = sys.prefix, base_prefix: str = sys.base_prefix) -> None:
    if prefix != base_prefix:
        raise ServiceError(
            f"this Python is a virtual environment ({prefix}); pywin32's service host cannot load its packages. "
            "Install MiWei into a machine-wide Python (docs/deploy.md)"
        )


def install_arguments() -> dict:
    """Keyword arguments for win32serviceutil.InstallService / ChangeServiceConfig: no command
    line of our own (pythonservice.exe hosts the class), so no secret can end up on one."""
    return {
        "pythonClassString": CLASS_STRING,
        "serviceName": SERVICE_NAME,
        "displayName": DISPLAY_NAME,
        "startType": SERVICE_AUTO_START,
        "description": DESCRIPTION,
    }


def render(spec: ServiceSpec, recovery: Recovery = Recovery()) -> str:
    return "\n".join(
        [
            f"service:       {SERVICE_NAME} ({DISPLAY_NAME}), automatic start, LocalSystem",
            f"hosted by:     pythonservice.exe (pywin32), class {CLASS_STRING}",
            f"option:        {CONFIG_OPTION} = {spec.config_path}",
            f"state folder:  {spec.state_dir}",
            f"on failure:    restart after {', '.join(f'{d} s' for d in recovery.delays_s)} "
            f"(the last repeats); the count resets after {recovery.reset_s} s without failure",
            "               also when the service stops with an error code (failure actions flag)",
            f"equivalent:    {' '.join(recovery.sc_arguments())}",
            f"               sc.exe failureflag {SERVICE_NAME} 1",
            "",
        ]
    )


class Pywin32Api:
    """The few service-control calls the installer makes, each one pywin32 call."""

    def __init__(self):
        if win32serviceutil is None:
            raise ServiceError("pywin32 is not installed: pip install pywin32, then python -m pywin32_postinstall -install")

    def exists(self) -> bool:
        try:
            win32serviceutil.QueryServiceStatus(SERVICE_NAME)
        except Exception:  # pywintypes.error 1060: no such service
            return False
        return True

    def install(self, arguments: dict) -> None:
        win32serviceutil.InstallService(**arguments)

    def update(self, arguments: dict) -> None:
        win32serviceutil.ChangeServiceConfig(**arguments)

    def set_option(self, name: str, value: str) -> None:
        win32serviceutil.SetServiceCustomOption(SERVICE_NAME, name, value)

    def set_recovery(self, actions: dict) -> None:
        manager = win32service.OpenSCManager(None, None, win32service.SC_MANAGER_ALL_ACCESS)
        try:
            service = win32service.OpenService(manager, SERVICE_NAME, win32service.SERVICE_ALL_ACCESS)
            try:
                win32service.ChangeServiceConfig2(service, SERVICE_CONFIG_FAILURE_ACTIONS, actions)
                win32service.ChangeServiceConfig2(service, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, True)
            finally:
                win32service.CloseServiceHandle(service)
        finally:
            win32service.CloseServiceHandle(manager)

    def start(self) -> None:
        win32serviceutil.StartService(SERVICE_NAME)

    def stop(self) -> None:
        try:
            win32serviceutil.StopServiceWithDeps(SERVICE_NAME)
        except Exception:  # 1062: not started
            pass

    def remove(self) -> None:
        win32serviceutil.RemoveService(SERVICE_NAME)


class WindowsService:
    kind = "Windows service"

    def __init__(self, api=None, recovery: Recovery = Recovery(), prefix: str = sys.prefix, base_prefix: str = sys.base_prefix):
        self._api, self.recovery = api, recovery
        self.prefix, self.base_prefix = prefix, base_prefix

    @property
    def api(self):
        if self._api is None:
            self._api = Pywin32Api()
        return self._api

    def render(self, spec: ServiceSpec) -> str:
        return render(spec, self.recovery)

    def install(self, spec: ServiceSpec, start: bool = True) -> list[str]:
        check_interpreter(self.prefix, self.base_prefix)
        api, arguments = self.api, install_arguments()
        try:
            if api.exists():
                api.stop()  # the new settings and code take effect at the next start
                api.update(arguments)
                done = [f"updated the {SERVICE_NAME} service"]
            else:
                api.install(arguments)
                done = [f"installed the {SERVICE_NAME} service (automatic start)"]
            api.set_option(CONFIG_OPTION, spec.config_path)
            api.set_recovery(self.recovery.failure_actions())
            done.append(f"recovery: restart after {', '.join(f'{d} s' for d in self.recovery.delays_s)}")
            if start:
                api.start()
                done.append(f"started {SERVICE_NAME}")
        except ServiceError:
            raise
        except Exception as exc:  # pywintypes.error: (5, ..., 'Access is denied.') without elevation
            raise ServiceError(f"the service control manager refused: {exc} (run from an elevated prompt)") from exc
        return done

    def uninstall(self) -> list[str]:
        api = self.api
        try:
            if not api.exists():
                return [f"{SERVICE_NAME} is not installed: nothing to remove"]
            api.stop()
            api.remove()
        except Exception as exc:
            raise ServiceError(f"the service control manager refused: {exc} (run from an elevated prompt)") from exc
        return [f"stopped and removed {SERVICE_NAME} (the state folder is kept: it may hold unsent events)"]


def run_from_option(config_path: str, stopping: threading.Event) -> int:
    """What the service does: load the config it was installed with and run until stopped."""
    from agent.config import load_agent_config
    from agent.service.runner import run_agent
    from rules.errors import InvalidInput

    try:
        config = load_agent_config(config_path)
    except InvalidInput as exc:
        raise ServiceError(f"the config does not load:\n{exc}") from exc
    return run_agent(config, stopping, config_path, service=True)


if win32serviceutil is not None:

    class MiWeiService(win32serviceutil.ServiceFramework):
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = DISPLAY_NAME
        _svc_description_ = DESCRIPTION

        def __init__(self, args):
            super().__init__(args)
            self.stopping = threading.Event()

        def SvcStop(self):  # noqa: N802 (pywin32's name)
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=30_000)
            self.stopping.set()

        def SvcDoRun(self):  # noqa: N802 (pywin32's name)
            servicemanager.LogInfoMsg(f"{SERVICE_NAME} starting")
            if sys.stderr is None:  # a service has no console; the agent's log file is in state_dir
                sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (for the process's life)
            config_path = win32serviceutil.GetServiceCustomOption(SERVICE_NAME, CONFIG_OPTION)
            if not config_path:
                raise ServiceError(f"no {CONFIG_OPTION} option: reinstall with miwei-agent install-service")
            code = run_from_option(config_path, self.stopping)
            if code and not self.stopping.is_set():
                # raising makes the service stop with an error, which the recovery actions restart
                raise ServiceError(f"the agent ended with exit code {code}")


if __name__ == "__main__" and win32serviceutil is not None:
    win32serviceutil.HandleCommandLine(MiWeiService)
