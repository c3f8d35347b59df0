"""What an ended session adds to the reporting rollups (pure logic)."""

from __future__ import annotations

import pytest

from shared.cursor import decode_cursor as _decode_cursor
from shared.cursor import encode_cursor as _encode_cursor
from shared.errors import InvalidArgument
from shared.features.admin import day_range, to_csv
from shared.store.firestore import rollups

DAY = 1_900_000_000.0  # 2030-03-17 UTC


def q(seq, conf, sources=("faq_a",), coll="returns", query="q?"):
    return {"seq": seq, "confidence": conf, "sources": list(sources), "collection": coll, "query": query,
            "response": f"answer {seq}", "timestamp": DAY + seq}  # fmt: skip


def test_a_session_adds_its_counts_histogram_and_weakest_answers():
    session = {"ended_at": DAY, "message_count": 8, "end_reason": "timeout"}
    analytics = [q(2, 0.95), q(4, 0.05, ("faq_b", "faq_b")), q(6, 0.49, coll="shipping"), q(8, None), q(10, 1.0)]
    r = rollups.session_rollup("s1", session, analytics, threshold=0.5)
    assert (r.day, r.messages, r.queries, r.end_reason) == ("2030-03-17", 8, 5, "timeout")
    assert (r.low_confidence, r.confidence_n) == (2, 4)
    assert r.confidence_sum == pytest.approx(0.95 + 0.05 + 0.49 + 1.0)
    assert r.histogram == [1, 0, 0, 0, 1, 0, 0, 0, 0, 2]  # 1.0 falls in the last bucket
    assert r.collections == {"returns": 4, "shipping": 1} and r.kb == {"faq_a": 4, "faq_b": 1}
    assert [w["seq"] for w in r.weak] == [4, 6]  # weakest first
    inc = r.increments()
    assert inc["end_reasons"] == {"timeout": 1} and inc["histogram"] == {"b0": 1, "b4": 1, "b9": 2}


def test_the_weak_answers_a_session_writes_are_bounded():
    analytics = [q(i, 0.1 + (i % 7) / 100) for i in range(1, 200)]
    r = rollups.session_rollup("s1", {"ended_at": DAY}, analytics, threshold=0.5)
    assert r.low_confidence == 199 and len(r.weak) == rollups.LOW_CONFIDENCE_PER_SESSION
    kept = {w["seq"] for w in r.weak}
    assert max(w["confidence"] for w in r.weak) <= min(a["confidence"] for a in analytics if a["seq"] not in kept)


def test_days_merge_into_the_range_totals():
    a = rollups.session_rollup("s1", {"ended_at": DAY}, [q(2, 0.2), q(4, 0.8)], 0.5).increments()
    b = rollups.session_rollup("s2", {"ended_at": DAY}, [q(2, 0.25, ("faq_c",))], 0.5).increments()
    merged = rollups.merge_days([a, b])
    assert merged["confidence_histogram"][2] == 2 and merged["kb"] == {"faq_a": 2, "faq_c": 1}
    row = rollups.day_row("2030-03-17", {"confidence_sum": 1.25, "confidence_n": 3, "sessions": 2})
    assert row["avg_confidence"] == pytest.approx(0.4167, abs=1e-4) and row["sessions"] == 2
    assert rollups.day_row("2030-03-18", None)["avg_confidence"] is None


def test_date_ranges_and_cursors_are_checked():
    assert day_range("2030-01-01", "2030-01-03") == ["2030-01-01", "2030-01-02", "2030-01-03"]
    for bad in (("2030-01-03", "2030-01-01"), ("2029-01-01", "2030-12-31"), ("2030-1-1", None), ("x", None)):
        with pytest.raises(InvalidArgument):
            day_range(*bad)
    assert _decode_cursor(_encode_cursor(12.5, "abc_00000004")) == (12.5, "abc_00000004")
    for bad in ("!!", "W10", _encode_cursor(1.0, "a/b")[:-1] + "x", "e" * 600):
        with pytest.raises(InvalidArgument):
            _decode_cursor(bad)


def test_csv_rows_cannot_run_as_spreadsheet_formulas():
    text = to_csv([{"session_id": "s", "seq": 2, "query": "=HYPERLINK(1)", "response": "+1", "sources": ["a", "b"]}])
    assert "'=HYPERLINK(1)" in text and "'+1" in text and "a b" in text


@pytest.mark.parametrize("doc_id", ["__x__", ".", "..", "__.__", "a" * 1501, "a\ud800b"])
def test_a_cursor_naming_no_document_firestore_could_hold_is_refused_with_400(doc_id):
    """A crafted cursor answered 503 (Firestore refused the id, logged as an ERROR): it is
    the client's mistake, named as such (issue 24, item 11)."""
    with pytest.raises(InvalidArgument) as err:
        _decode_cursor(_encode_cursor(1.0, doc_id))
    assert err.value.details == {"field": "cursor"}


def test_a_range_reaching_before_the_first_day_of_the_calendar_is_refused_with_400():
    """to=0001-01-05 and the default 30 days before it answered 500 (OverflowError) (issue 24, item 12)."""
    for bad in ((None, "0001-01-05"), ("0001-01-01", "0001-01-01x")):
        with pytest.raises(InvalidArgument):
            day_range(*bad)
    assert day_range("0001-01-01", "0001-01-02") == ["0001-01-01", "0001-01-02"]
    assert day_range("9999-12-30", "9999-12-31") == ["9999-12-30", "9999-12-31"]


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r", "\t=", "\r\n="])
def test_a_csv_cell_a_spreadsheet_would_run_is_text_whatever_leads_it(lead):
    """A leading TAB or CR, which spreadsheets skip before a formula, too (issue 24, item 10)."""
    text = to_csv([{"session_id": "s", "seq": 2, "query": lead + "HYPERLINK(1)", "response": "ok", "sources": []}])
    assert "'" + lead + "HYPERLINK(1)" in text, text
