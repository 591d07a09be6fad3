"""The incident settings in the server config: window and escalation ladders, checked before start."""

from __future__ import annotations

import pytest

from rules.errors import InvalidInput
from server.app import create_app
from server.config import load_server_config

SECRET = "a-long-random-enrolment-secret-0123456789"


def _config(tmp_path, extra: str):
    path = tmp_path / "config.yaml"
    path.write_text(f'server:\n  enroll_secret: "{SECRET}"\n{extra}', encoding="utf-8")
    return load_server_config(str(path))


def test_defaults_are_thirty_minutes_ten_and_a_hundred_files_100_mb_and_1_gb(tmp_path):
    config = _config(tmp_path, "")
    assert (config.incident_window_s, config.incident_escalate_files, config.incident_escalate_bytes) == (
        1800.0, (10, 100), (100 * 1024**2, 1024**3),
    )  # fmt: skip


def test_the_settings_are_read_with_units_and_reach_the_store(tmp_path, store):
    config = _config(tmp_path, "  incident_window_s: 10m\n  incident_escalate_files: [5]\n  incident_escalate_bytes: [10MB, 2GB, 5000000000]\n")
    assert (config.incident_window_s, config.incident_escalate_files, config.incident_escalate_bytes) == (
        600.0, (5,), (10 * 1024**2, 2 * 1024**3, 5_000_000_000),
    )  # fmt: skip
    create_app(config, store)
    assert (store.incidents.window_s, store.incidents.escalate_files, store.incidents.escalate_bytes) == (
        600.0, (5,), (10 * 1024**2, 2 * 1024**3, 5_000_000_000),
    )  # fmt: skip
    assert [store.incidents.steps(n, 0) for n in (4, 5, 500)] == [0, 1, 1]
    assert [store.incidents.steps(1, b) for b in (0, 10 * 1024**2, 5 * 10**9)] == [0, 1, 3]


@pytest.mark.parametrize(
    "extra,message",
    [
        ("  incident_escalate_files: [100, 10]\n", "server.incident_escalate_files: the files must rise"),
        ("  incident_escalate_files: [1.5]\n", "server.incident_escalate_files[0]: expected a positive whole number"),
        ("  incident_escalate_bytes: [lots]\n", "server.incident_escalate_bytes[0]: expected a positive size"),
        ("  incident_escalate_bytes: 1GB\n", "server.incident_escalate_bytes: expected a list of sizes"),
        ("  incident_window_s: 0\n", "server.incident_window_s: expected a positive duration"),
    ],
)
def test_bad_settings_stop_the_start_saying_where(tmp_path, extra, message):
    with pytest.raises(InvalidInput) as caught:
        _config(tmp_path, extra)
    assert message in str(caught.value)
