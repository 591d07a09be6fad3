"""The central secret register on PostgreSQL: the API tests of test_register_api.py run there too,
and parallel changes of one item leave a history whose every `before` is the previous `after` (the
row is locked FOR UPDATE while it is read and changed). Skips with the reason when PostgreSQL is
not installed."""

from __future__ import annotations

import threading

from tests.server import postgres
from tests.server.postgres import cluster, db_url  # noqa: F401 - one cluster per module, a database per test
from tests.server.test_register_api import (  # noqa: F401 - run here against PostgreSQL
    PUMP,
    _create,
    admin_h,
    analyst_h,
    test_a_bad_sheet_changes_nothing_and_says_row_and_column,
    test_admin_creates_changes_declassifies_and_destroys_with_history,
    test_import_applies_changes_and_new_rows,
    test_list_filters,
    test_xlsx_round_trip_leaves_the_register_unchanged,
)

pytestmark = postgres.MARKS


def test_parallel_changes_chain_their_history(client, admin_h):  # noqa: F811
    item = _create(client, admin_h)
    people = [f"工程师{i}" for i in range(8)]
    answers: list[int] = []

    def change(person: str) -> None:
        response = client.patch(
            f"/api/v1/register/{item['id']}", json={"owner_person": person, "reason": "交接"}, headers=admin_h
        )
        answers.append(response.status_code)

    threads = [threading.Thread(target=change, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert answers == [200] * len(people)
    history = client.get(f"/api/v1/register/{item['id']}", headers=admin_h).json()["history"]
    assert [h["action"] for h in history] == ["determined"] + ["changed"] * len(people)
    for earlier, later in zip(history[:-1], history[1:], strict=True):
        assert later["before"] == earlier["after"]
    assert PUMP["owner_person"] == history[0]["after"]["owner_person"]
