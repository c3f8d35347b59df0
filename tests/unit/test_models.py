"""Validation: every kind of bad input becomes one clear error type."""

import pytest

from shared.core.models import parse_message, parse_user_info, validate_session_id, validate_user_id
from shared.errors import InvalidArgument, PayloadTooLarge

GOOD_SID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "sid",
    [
        None,
        42,
        "",
        "short",
        GOOD_SID.upper(),
        GOOD_SID + "0",
        "../" + GOOD_SID[3:],
        "{" + GOOD_SID[1:],
        GOOD_SID[:-1] + "*",
        GOOD_SID[:-1] + "/",
        GOOD_SID[:-1] + "\n",
        " " + GOOD_SID[1:],
    ],
)
def test_session_id_strict_format(sid):
    with pytest.raises(InvalidArgument):
        validate_session_id(sid)


def test_good_session_id_passes():
    assert validate_session_id(GOOD_SID) == GOOD_SID


@pytest.mark.parametrize("uid", [None, "", "a/b", "x" * 129, "sp ace", 7, ".", "..", "__x__"])
def test_user_id_rejected(uid):
    with pytest.raises(InvalidArgument):
        validate_user_id(uid)


@pytest.mark.parametrize(
    ("role", "content", "metadata", "cmid"),
    [
        ("bot", "hi", None, None),
        (None, "hi", None, None),
        ("user", "", None, None),
        ("user", "   \n", None, None),
        ("user", 5, None, None),
        ("user", "hi", "not a dict", None),
        ("user", "hi", {"x": {1, 2}}, None),
        ("user", "hi", None, "has space"),
        ("user", "hi", None, "x" * 129),
        ("user", "hi", None, 12),
    ],
)
def test_bad_messages_raise_invalid_argument(role, content, metadata, cmid):
    with pytest.raises(InvalidArgument):
        parse_message(role, content, metadata, cmid)


def test_content_limit_is_32_kib_in_bytes():
    parse_message("user", "x" * 32 * 1024)
    with pytest.raises(PayloadTooLarge):
        parse_message("user", "x" * (32 * 1024 + 1))
    # multi-byte characters count in bytes, not characters
    with pytest.raises(PayloadTooLarge):
        parse_message("user", "é" * (16 * 1024 + 1))


def test_metadata_limit_is_8_kib_of_json():
    parse_message("assistant", "ok", {"k": "v" * 8000})
    with pytest.raises(PayloadTooLarge):
        parse_message("assistant", "ok", {"k": "v" * 8200})


def test_user_info_bounded_and_object():
    assert parse_user_info({"platform": "web", "lang": "en"}) == {"platform": "web", "lang": "en"}
    assert parse_user_info(None) == {}
    with pytest.raises(InvalidArgument):
        parse_user_info(["not", "an", "object"])
    with pytest.raises(PayloadTooLarge):
        parse_user_info({"blob": "x" * 5000})
    with pytest.raises(InvalidArgument):
        parse_user_info({"platform": "p" * 65})


# -- JSON every layer can store (Redis, Firestore, the HTTP answer) ------------------------------
def _deep(levels: int) -> dict:
    d: dict = {"leaf": 1}
    for _ in range(levels - 1):
        d = {"n": d}
    return d


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"confidence": float("inf")}, "metadata.confidence"),
        ({"confidence": float("-inf")}, "metadata.confidence"),
        ({"confidence": float("nan")}, "metadata.confidence"),
        ({"big": 10**400}, "metadata.big"),
        ({"big": 2**63}, "metadata.big"),
        ({"small": -(2**63) - 1}, "metadata.small"),
        ({"__x__": 1}, "metadata.__x__"),
        ({"a": {"__name__": "v"}}, "metadata.a.__name__"),
        ({"": 1}, 'metadata[""]'),
        ({"k" * 257: 1}, "metadata." + "k" * 257),
        ({"sources": [["a"]]}, "metadata.sources[0]"),
        ({"x": [1, [2]]}, "metadata.x[1]"),
        ({"x": [{"y": [[1]]}]}, "metadata.x[0].y[0]"),
        ({"deep": _deep(12)}, "metadata.deep" + ".n" * 9),
        ({"sources": ["ok", 5]}, "metadata.sources[1]"),
        ({"sources": "kb_1"}, "metadata.sources"),
        ({"sources": [""]}, "metadata.sources[0]"),
        ({"s": "\ud800"}, "metadata.s"),
    ],
)
def test_metadata_a_layer_cannot_store_is_refused_naming_the_field(metadata, field):
    with pytest.raises(InvalidArgument) as err:
        parse_message("assistant", "ok", metadata)
    assert type(err.value) is InvalidArgument
    assert err.value.details["field"] == field
    assert str(err.value).startswith(field + ":")


def test_storable_metadata_passes_unchanged():
    md = {
        "confidence": 0.9,
        "n": 2**63 - 1,
        "m": -(2**63),
        "sources": ["kb_1", "a/b", "__x__", "."],
        "x": [{"y": [1, 2]}, None, True],
        "a.b": {"c-d": "e"},
        "deep": _deep(9),
    }
    assert parse_message("assistant", "ok", md).metadata == md


@pytest.mark.parametrize(
    ("info", "field"),
    [
        ({"__x__": "v"}, "user_info.__x__"),
        ({"prefs": {"": 1}}, 'user_info.prefs[""]'),
        ({"tags": [["a"]]}, "user_info.tags[0]"),
        ({"score": float("inf")}, "user_info.score"),
        ({"id": 10**30}, "user_info.id"),
        ({"d": _deep(12)}, "user_info.d" + ".n" * 9),
    ],
)
def test_user_info_a_layer_cannot_store_is_refused_naming_the_field(info, field):
    with pytest.raises(InvalidArgument) as err:
        parse_user_info(info)
    assert err.value.details["field"] == field


def test_make_storable_drops_only_what_cannot_be_stored():
    from shared.store.storable import make_storable

    value = {"ok": 1, "__x__": 2, "s": [["a"], "b"], "f": float("inf"), "n": {"": 1, "k": 10**30, "v": "w"}}
    cleaned, dropped = make_storable(value)
    assert cleaned == {"ok": 1, "s": ["b"], "n": {"v": "w"}}
    assert sorted(dropped) == sorted(["__x__", "s[0]", "f", 'n[""]', "n.k"])


def test_an_end_reason_is_one_of_a_fixed_set_it_names_no_field_of_the_rollup():
    """Each end reason becomes a field of the day's shared rollup document: a client's own
    words there would grow it toward Firestore's limits for everyone (issue 24, item 1)."""
    from shared.core.ending import validate_end_args
    from shared.store.base import CLIENT_END_REASONS

    sid = "a" * 32
    for reason in CLIENT_END_REASONS:
        assert validate_end_args(sid, None, reason) == sid
    for reason in ("attacker_words_1", "x", "timeout", "expired", "Completed", "", None, 3):
        with pytest.raises(InvalidArgument) as err:
            validate_end_args(sid, None, reason)
        assert err.value.details.get("field") == "reason", reason
    # the system's own reasons (the sweep's timeout, lost memory's expired) from the system only
    assert validate_end_args(sid, None, "timeout", system=True) == sid
    assert validate_end_args(sid, None, "expired", system=True) == sid


def test_a_rollup_counts_an_unknown_stored_reason_as_other():
    """Data ended before the fixed set (or written by hand) cannot name a rollup field."""
    from shared.store.firestore import rollups

    r = rollups.session_rollup("s", {"ended_at": 1.9e9, "end_reason": "made_up_by_a_client"}, [], threshold=0.5)
    assert r.increments()["end_reasons"] == {"other": 1}
    r = rollups.session_rollup("s", {"ended_at": 1.9e9, "end_reason": "timeout"}, [], threshold=0.5)
    assert r.increments()["end_reasons"] == {"timeout": 1}
