"""agent.request_timeout_s and agent.retry_max_s: read from the config, checked, and used by the reporter."""

from __future__ import annotations

import pytest

from agent.config import load_agent_config
from agent.reporter import BACKOFF_MAX_S, CONNECT_TIMEOUT_S, TIMEOUT_S, Reporter
from agent.spool import Spool
from rules.errors import InvalidInput

SECRET = "s3cret-enrolment-value-long-enough"


def _config(tmp_path, extra: str):
    path = tmp_path / "config.yaml"
    path.write_text(
        f"agent:\n  server_url: http://127.0.0.1:8765\n  enroll_secret: {SECRET}\n  state_dir: {tmp_path / 'state'}\n{extra}",
        encoding="utf-8",
    )
    return load_agent_config(str(path))


def test_the_defaults_are_the_reporters_own(tmp_path):
    config = _config(tmp_path, "")
    assert (config.request_timeout_s, config.retry_max_s) == (TIMEOUT_S, BACKOFF_MAX_S) == (30.0, 60.0)


def test_the_reporter_times_out_and_backs_off_as_configured(tmp_path):
    config = _config(tmp_path, "  request_timeout_s: 2\n  retry_max_s: 3\n")
    spool = Spool(str(tmp_path / "spool.db"))
    reporter = Reporter(
        config.server_url, SECRET, str(tmp_path), "a", "pc", spool,
        timeout_s=config.request_timeout_s, retry_max_s=config.retry_max_s,
    )
    assert reporter.timeout == (2.0, 2.0)  # connect within the same budget
    backoffs = []
    for _ in range(6):
        reporter._backoff_s = reporter._back_off_next()
        backoffs.append(reporter._backoff_s)
    assert backoffs == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert Reporter(config.server_url, SECRET, str(tmp_path), "a", "pc", spool).timeout == (CONNECT_TIMEOUT_S, TIMEOUT_S)
    spool.close()


@pytest.mark.parametrize(
    "extra, message",
    [
        ("  request_timeout_s: 0\n", "agent.request_timeout_s: must be at least 0.5, got 0"),
        ("  request_timeout_s: soon\n", "agent.request_timeout_s: "),
        ("  retry_max_s: 7200\n", "agent.retry_max_s: must be at most 3600, got 7200"),
    ],
)
def test_out_of_range_values_are_located_errors(tmp_path, extra, message):
    with pytest.raises(InvalidInput) as caught:
        _config(tmp_path, extra)
    assert any(message in str(e) for e in caught.value.errors), [str(e) for e in caught.value.errors]
