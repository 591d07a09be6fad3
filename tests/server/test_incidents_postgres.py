"""Incidents on PostgreSQL: the API tests of test_incidents.py run there too (the advisory lock per
incident, the executemany inserts, the JSON columns). Skips with the reason when PostgreSQL is not
installed."""

from __future__ import annotations

from tests.server import postgres
from tests.server.postgres import cluster, db_url  # noqa: F401 - one cluster per module, a database per test
from tests.server.test_incidents import (  # noqa: F401 - run here against PostgreSQL
    analyst,
    test_a_file_written_again_joins_its_row_and_a_more_telling_category_renames_the_incident,
    test_a_usb_session_of_fourteen_files_is_one_incident_with_every_file,
    test_another_stick_another_user_or_a_pause_longer_than_the_window_is_another_incident,
    test_classified_marked_and_personal_rules_on_one_file_are_three_facets_of_one_row,
    test_the_bulk_egress_rule_still_counts_the_files_of_an_incident,
)

pytestmark = postgres.MARKS
