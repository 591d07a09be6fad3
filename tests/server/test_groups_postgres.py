"""Agent groups on PostgreSQL: the API tests of test_groups.py run there too (the migration's
default group row leaves the id sequence past it). Skips with the reason when PostgreSQL is not
installed."""

from __future__ import annotations

from tests.server import postgres
from tests.server.postgres import cluster, db_url  # noqa: F401 - one cluster per module, a database per test
from tests.server.test_groups import (  # noqa: F401 - run here against PostgreSQL
    test_analysts_read_admins_change,
    test_two_groups_get_different_items_and_a_change_moves_the_version,
    test_without_a_register_the_version_is_the_rules,
)

pytestmark = postgres.MARKS
