"""The export's cursor (created_at, session id, and the last seq of a session split across
pages): crafted ones are refused with a 400 naming ``cursor``, never reach a store."""

from __future__ import annotations

import base64
import json

import pytest

from shared.cursor import MAX_SEQ, decode_cursor, decode_seq_cursor, encode_cursor
from shared.errors import InvalidArgument

SID = "0123456789abcdef0123456789abcdef"


def raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_the_export_cursor_round_trips_with_and_without_a_seq():
    assert decode_seq_cursor(encode_cursor(12.5, SID)) == (12.5, SID, None)
    assert decode_seq_cursor(encode_cursor(12.5, SID, 0)) == (12.5, SID, 0)
    assert decode_seq_cursor(encode_cursor(1, SID, MAX_SEQ)) == (1.0, SID, MAX_SEQ)
    assert decode_seq_cursor(None) is None and decode_seq_cursor("") is None
    assert len(encode_cursor(1.7e9, SID, MAX_SEQ)) < 512


@pytest.mark.parametrize(
    "cursor",
    [
        raw([1.0, SID, -1]),  # a negative seq
        raw([1.0, SID, MAX_SEQ + 1]),  # past any message number
        raw([1.0, SID, 10**400]),  # an integer no float holds
        raw([10**309, SID, 1]),  # a sort value no float holds
        raw([10**309, SID]),
        raw([1.0, SID, 1.5]),
        raw([1.0, SID, True]),
        raw([1.0, SID, "3"]),
        raw([1.0, SID, None, 4]),  # too many values
        raw([1.0]),
        raw({"ts": 1.0, "id": SID}),
        raw([True, SID]),
        raw(["1", SID]),
        raw([1.0, 7]),
        raw([1.0, [SID]]),
        base64.urlsafe_b64encode(b'[1.0, "\\ud800abc", 1]').decode(),  # a lone surrogate
        base64.urlsafe_b64encode(b'[1e999, "x", 1]').decode(),  # infinity
        base64.urlsafe_b64encode(b"[" * 5000).decode()[:500],
        raw([1.0, "a/b", 1]),
        "!!",
        7,
        ["x"],
        "e" * 600,
    ],
)
def test_a_crafted_export_cursor_is_a_400_naming_the_field(cursor):
    with pytest.raises(InvalidArgument) as err:
        decode_seq_cursor(cursor)
    assert err.value.details == {"field": "cursor"}


def test_a_cursor_with_a_seq_is_no_cursor_of_the_other_pages():
    with pytest.raises(InvalidArgument):
        decode_cursor(encode_cursor(1.0, "abc", 3))
