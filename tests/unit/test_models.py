"""Validation: every kind of bad input becomes one clear error type."""

import pytest

from shared.errors import InvalidArgument, PayloadTooLarge
from shared.models import parse_message, parse_user_info, validate_session_id, validate_user_id

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


@pytest.mark.parametrize("uid", [None, "", "a/b", "x" * 129, "sp ace", 7])
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
