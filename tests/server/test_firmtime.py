"""The firm's clock (server/firmtime.py) and `server.timezone` in the config."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from rules.errors import InvalidInput
from server import firmtime
from server.config import load_server_config
from tests.config_cases import SECRET

NEW_YEAR_UTC = "2026-01-01T00:00:00.000Z"


def _config(tmp_path, extra: str = ""):
    path = tmp_path / "config.yaml"
    path.write_text(f"server:\n  enroll_secret: {SECRET}\n{extra}", encoding="utf-8")
    return load_server_config(str(path))


def test_show_puts_a_utc_time_on_the_firms_wall_clock():
    assert firmtime.show(NEW_YEAR_UTC, "Asia/Shanghai") == "2026-01-01 08:00:00"
    assert firmtime.show(datetime(2026, 1, 1, tzinfo=UTC), "Asia/Shanghai") == "2026-01-01 08:00:00"
    assert firmtime.show(datetime(2026, 1, 1), "Asia/Shanghai") == "2026-01-01 08:00:00"  # naive: UTC (SQLite)
    assert firmtime.show(NEW_YEAR_UTC, "UTC") == "2026-01-01 00:00:00"
    assert firmtime.show(NEW_YEAR_UTC, "Europe/Berlin") == "2026-01-01 01:00:00"
    assert firmtime.show("2026-07-01T00:00:00Z", "Europe/Berlin") == "2026-07-01 02:00:00"  # summer time
    assert firmtime.show(None, "Asia/Shanghai") == "" and firmtime.show("", "Asia/Shanghai") == ""
    assert firmtime.show("not a time", "Asia/Shanghai") == "not a time"
    assert firmtime.local(NEW_YEAR_UTC, "Asia/Shanghai").utcoffset().total_seconds() == 8 * 3600


def test_zone_label_names_beijing_time_or_the_iana_name_with_the_offset():
    assert firmtime.zone_label("Asia/Shanghai", "zh") == "北京时间 (UTC+08:00)"
    assert firmtime.zone_label("Asia/Shanghai", "en") == "China Standard Time (UTC+08:00)"
    assert firmtime.zone_label("UTC", "zh") == "UTC (UTC+00:00)"
    winter, summer = datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 7, 15, tzinfo=UTC)
    assert firmtime.zone_label("Europe/Berlin", "en", winter) == "Europe/Berlin (UTC+01:00)"
    assert firmtime.zone_label("Europe/Berlin", "en", summer) == "Europe/Berlin (UTC+02:00)"
    assert firmtime.zone_label("America/St_Johns", "en", winter) == "America/St_Johns (UTC-03:30)"


def test_parse_local_reads_typed_times_on_the_firms_clock():
    assert firmtime.parse_local("2026-01-01 08:00", "Asia/Shanghai") == datetime(2026, 1, 1, tzinfo=UTC)
    assert firmtime.parse_local("2026-01-01", "Asia/Shanghai") == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert firmtime.parse_local("2026-01-01T08:00:00", "UTC") == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert firmtime.parse_local("2026-01-01T08:00:00Z", "Asia/Shanghai") == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert firmtime.parse_local(" 2026-01-01T09:00+01:00 ", "Asia/Shanghai") == datetime(2026, 1, 1, 8, tzinfo=UTC)
    for bad in ("", "yesterday", "2026-13-01", "<script>"):
        with pytest.raises(ValueError):
            firmtime.parse_local(bad, "Asia/Shanghai")


def test_unknown_zone_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="Mars/Olympus"):
        firmtime.zone("Mars/Olympus")
    with pytest.raises(ValueError):
        firmtime.zone("../../etc/passwd")


def test_config_timezone_defaults_to_shanghai_and_sets_the_working_time_zone(tmp_path):
    config = _config(tmp_path)
    assert config.timezone == "Asia/Shanghai" and config.working_time.timezone == "Asia/Shanghai"
    berlin = _config(tmp_path, "  timezone: Europe/Berlin\n")
    assert berlin.timezone == "Europe/Berlin" and berlin.working_time.timezone == "Europe/Berlin"
    both = _config(tmp_path, "  timezone: UTC\n  working_time:\n    hours: '09:00-17:00'\n")
    assert both.working_time.timezone == "UTC"
    own = _config(tmp_path, "  timezone: UTC\n  working_time:\n    timezone: Asia/Tokyo\n")
    assert own.timezone == "UTC" and own.working_time.timezone == "Asia/Tokyo"


def test_config_refuses_an_unknown_zone_naming_the_setting(tmp_path):
    with pytest.raises(InvalidInput) as caught:
        _config(tmp_path, "  timezone: Asia/Shangai\n")
    assert "server.timezone: unknown time zone 'Asia/Shangai' (did you mean 'Asia/Shanghai'?)" in str(caught.value)
    with pytest.raises(InvalidInput) as caught:
        _config(tmp_path, "  timezone: Beijing\n")
    assert "server.timezone: unknown time zone 'Beijing' (an IANA zone such as Asia/Shanghai)" in str(caught.value)


def test_zoneinfo_finds_shanghai_without_the_systems_zone_files():
    """A minimal Debian has no /usr/share/zoneinfo: the tzdata package (setup.cfg) must be enough."""
    code = "from server import firmtime; print(firmtime.show('2026-01-01T00:00:00Z', 'Asia/Shanghai'))"
    env = dict(os.environ, PYTHONTZPATH="/nonexistent")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2026-01-01 08:00:00"
