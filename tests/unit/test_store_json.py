"""The store's JSON (shared.store.base._loads/_dumps): orjson where it can, the standard
library where it cannot, and the same values either way."""

from __future__ import annotations

import json
import math

import pytest

from shared.store.base import StoredMessage, _dumps, _loads


def _std_loads(raw: str) -> object:
    return json.loads(
        raw, parse_constant=lambda _: None, parse_float=lambda t: f if math.isfinite(f := float(t)) else None
    )


@pytest.mark.parametrize(
    "raw",
    [
        '{"seq":1,"mid":"a","role":"user","content":"héllo \\u2028 😀","timestamp":1.5}',
        '{"confidence":1e999,"x":-1e999}',  # infinities buffered before the edge refused them
        '{"a":NaN,"b":Infinity,"c":-Infinity}',
        '{"lone":"\\ud800"}',
        '{"dup":1,"dup":2}',
        '{"big":123456789012345678901234567890,"phone":"+1 5551234567890123456"}',  # exact, not a float
        '{"metadata":{"n":[1,{"deep":-123456789012345678901234567890}]}}',
        '{"f":1e30,"g":-2e19,"h":18446744073709551615}',
        "[0.1, 1e-7, 5e300, -0.0]",
    ],
)
def test_reads_what_the_standard_library_reads(raw: str) -> None:
    assert repr(_loads(raw)) == repr(_std_loads(raw))


@pytest.mark.parametrize(
    "value",
    [
        {"content": "héllo\n\u2028", "n": [1, 2.5, -0.0, 1e-7]},
        {"big": 2**70},  # past 64 bits: the standard library writes it
        {"lone": "\ud800"},  # not UTF-8: the standard library escapes it
        {1: "a key that is not a string"},
    ],
)
def test_writes_json_that_reads_back_the_same(value: object) -> None:
    out = _dumps(value)
    assert json.loads(out) == json.loads(json.dumps(value))
    assert ", " not in out and '": ' not in out  # compact


def test_nan_is_written_as_null_not_as_invalid_json() -> None:
    assert _dumps({"x": math.nan}) == '{"x":null}'


def test_a_message_round_trips() -> None:
    m = StoredMessage(3, "c-1", "assistant", "é\u2028x", 1.25, {"sources": ["kb_1"], "confidence": 0.5})
    assert StoredMessage.from_json(m.to_json()) == m
    bare = StoredMessage(4, "c-2", "user", "q", 2.0)
    assert '"metadata"' not in bare.to_json() and StoredMessage.from_json(bare.to_json()) == bare


def test_the_guard_reads_nesting_orjson_accepts_past_the_recursion_limit() -> None:
    from shared import fastjson

    deep = "[" * 1000 + "123456789012345678901234567890" + "]" * 1000
    assert fastjson.loads(deep) is fastjson.MISS  # the integer would come back a float
    assert fastjson.loads("[" * 1000 + "1" + "]" * 1000) is not fastjson.MISS
    assert fastjson.loads('{"a":[{"b":1e19}]}') is not fastjson.MISS
    assert fastjson.loads('{"a":[{"b":-2e19}]}') is fastjson.MISS
