"""The table path's context (identifiers._context_bits) reads a candidate's column only when its
near words leave the answer open, and gives what the per-part reference gives: on random tables
forced through the numpy path whatever their length (NUMPY_SCAN_CHARS 0), with the window search
asked of every part or of the worded ones only."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import identifiers
from agent.content.document import BODY, Document, TextPart
from tests.agent.content.test_identifier_vector import TODAY, _both, table_documents

DETECTORS = identifiers._IdentifierDetector.__subclasses__()


def _fast_and_reference(document: Document, worded_pass_chars: int) -> tuple[tuple, tuple]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(identifiers, "NUMPY_SCAN_CHARS", 0)
        patch.setattr(identifiers, "WORDED_PASS_CHARS", worded_pass_chars)
        return _both(document, [cls(lambda: TODAY) for cls in DETECTORS])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_documents(), st.sampled_from([0, 1024, 10**9]))
def test_the_table_path_counts_what_the_parts_count_at_any_length(document, worded_pass_chars):
    fast, reference = _fast_and_reference(document, worded_pass_chars)
    assert fast == reference


@pytest.mark.parametrize("worded_pass_chars", [0, 10**9])
def test_a_word_beside_a_number_does_not_hide_its_column(worded_pass_chars):
    """A card word beside a mobile settles nothing about it: its 手机 column still makes it one;
    an order word beside a card settles it (not a card) whatever its 卡号 column says."""
    rows = ("姓名,手机,卡号", "张三,卡号 13812345678,订单 6222021234567890123", "李四,13912345678,x")
    document = Document("csv", tuple(TextPart(BODY, row) for row in rows))
    fast, reference = _fast_and_reference(document, worded_pass_chars)
    assert fast == reference
    assert [(d.detector, d.count) for d in fast] == [("cn_mobile", 2)]
