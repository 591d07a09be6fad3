"""Daily seals on PostgreSQL: the tests of test_seals.py run there too (the day's row taken once
with ON CONFLICT DO NOTHING under an advisory lock, sealing in parallel, the retention purge).
Skips with the reason when PostgreSQL is not installed."""

from __future__ import annotations

from tests.server import postgres
from tests.server.postgres import cluster, db_url  # noqa: F401 - one cluster per module, a database per test
from tests.server.test_seals import (  # noqa: F401 - run here against PostgreSQL
    key,
    test_a_day_is_sealed_per_agent_signed_and_checks,
    test_a_day_purged_by_retention_still_verifies_and_keeps_its_seal,
    test_an_event_removed_or_changed_after_sealing_is_found,
    test_sealing_is_idempotent_and_runs_once_even_in_parallel,
)

pytestmark = postgres.MARKS
