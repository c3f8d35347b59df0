"""A framework's item on a message (an ADK event, an OpenAI Agents item) is kept whole in
every layer, whatever shape JSON allows, and an item alone (no text) is neither a question
nor an answer: not in the formatted context, the summary, the analytics or a digest."""

from __future__ import annotations

import pytest

from shared.errors import InvalidArgument, PayloadTooLarge
from tests.store.conftest import make_manager


def _deep(n: int) -> dict:
    d: dict = {"leaf": True}
    for i in range(n):
        d = {f"level{i}": d}
    return d


# What Firestore would refuse as fields, and what JSON still allows.
STRANGE = {
    "deep": _deep(40),  # Firestore nests at most 20 levels
    "arrays": [[1, [2, [3]]], []],  # arrays directly in arrays
    "__name__": "reserved",  # a reserved field name
    "": "empty key",
    "a.b`c": "field-path characters",
    "big": 2**70,  # past 64 bits
    "text": "cat \U0001f408 \u2028 line",
    "inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="},
}


@pytest.mark.parametrize("layer", ["redis", "firestore", "memory"])
def test_a_strange_item_comes_back_whole_from_each_layer(layer, redis_server, firestore_emulator, uid):
    if layer == "redis":
        m = make_manager(redis_server.url)
    elif layer == "firestore":
        m = make_manager(None)
    else:
        m = make_manager(None, firestore=False)
    sid = m.create_session({}, user_id=uid).session_id
    res = m.add_message(sid, "assistant", "", item=STRANGE, client_message_id="evt-1", user_id=uid)
    assert res.storage == layer
    again = m.add_message(sid, "assistant", "", item=STRANGE, client_message_id="evt-1", user_id=uid)
    assert again.duplicate and again.seq == res.seq  # a retried event is stored once
    history = m.get_history(sid, user_id=uid).messages
    assert [(h.content, h.item) for h in history] == [("", STRANGE)]
    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert ctx.messages[0].item == STRANGE
    assert "Assistant:" not in ctx.formatted_context  # no text, no line


def test_an_item_alone_neither_asks_nor_answers(redis_server, firestore_emulator, uid, no_emulated_trigger):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "what is the weather in Oslo?", user_id=uid)
    call = {"function_call": {"name": "weather", "args": {"city": "Oslo"}}}
    m.add_message(sid, "assistant", "", item=call, user_id=uid)
    m.add_message(sid, "user", "", item={"function_response": {"name": "weather", "response": {"c": 3}}}, user_id=uid)
    m.add_message(sid, "assistant", "It is 3 degrees in Oslo.", user_id=uid)
    ctx = m.get_context_for_llm(sid, user_id=uid)
    lines = ctx.formatted_context.splitlines()
    assert "User: what is the weather in Oslo?" in lines and "Assistant: It is 3 degrees in Oslo." in lines
    assert not [ln for ln in lines if ln.rstrip().endswith(":") and ln.startswith(("User", "Assistant"))]
    result = m.end_session_with_analytics(sid, user_id=uid)
    assert result.queries_recorded == 1
    [entry] = m.firestore.read_analytics(sid)
    assert (entry["query"], entry["response"]) == ("what is the weather in Oslo?", "It is 3 degrees in Oslo.")
    assert result.summary is not None and "- Assistant: " + "\n" not in result.summary.text + "\n"
    doc = m.firestore.get_session(sid)
    assert [x.get("item") is not None for x in doc["final_messages"]] == [False, True, True, False]


def test_the_firestore_outage_path_keeps_the_question_past_an_item(firestore_emulator, uid, no_emulated_trigger):
    m = make_manager(None)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "q1", user_id=uid)
    m.add_message(sid, "assistant", "", item={"tool": "lookup"}, user_id=uid)
    m.add_message(sid, "assistant", "a1", user_id=uid)
    assert m.end_session_with_analytics(sid, user_id=uid).queries_recorded == 1
    [entry] = m.firestore.read_analytics(sid)
    assert (entry["query"], entry["response"]) == ("q1", "a1")


@pytest.mark.parametrize(
    ("content", "item", "field", "error"),
    [
        ("", None, "content", InvalidArgument),  # no text, no item
        ("   ", {"a": 1}, "content", InvalidArgument),  # blank text is neither
        ("x", ["not", "an", "object"], "item", InvalidArgument),
        ("x", "{}", "item", InvalidArgument),  # a string is not an object
        ("x", {"n": float("nan")}, "item", InvalidArgument),
        ("x", {"s": "\ud800"}, "item", InvalidArgument),  # a lone surrogate is not Unicode
        ("x", {"blob": "x" * 40_000}, "item", PayloadTooLarge),
    ],
)
def test_a_bad_item_is_refused_naming_its_field(redis_server, uid, content, item, field, error):
    m = make_manager(redis_server.url, firestore=False)
    sid = m.create_session({}, user_id=uid).session_id
    with pytest.raises(error) as exc:
        m.add_message(sid, "assistant", content, item=item, user_id=uid)
    assert exc.value.details.get("field") == field
    assert m.get_history(sid, user_id=uid).messages == []  # nothing half-written
