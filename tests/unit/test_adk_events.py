"""chat_memory_client.adk._events without a stack: an ADK event's message (role, content,
client_message_id, item) and the session read back from messages (events equal, the state
folded in order, from the oldest event's own state once the header is no longer returned)."""

from __future__ import annotations

import datetime
import json

from chat_memory_client.adk import _events as ev
from chat_memory_client.client import CLIENT_MESSAGE_ID_RE
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.genai import types


def message(seq: int, role: str, content: str, item: dict) -> dict:
    # what get_history answers: the item as JSON text came in
    return {"seq": seq, "role": role, "content": content, "timestamp": 1.0 + seq, "item": json.loads(json.dumps(item))}


def test_a_session_reads_back_from_its_messages_with_its_state_folded():
    call = types.Part(function_call=types.FunctionCall(name="f", args={"x": 1}, id="c1"))
    picture = types.Part.from_bytes(data=b"\x89PNG", mime_type="image/png")
    events = [
        Event(author="user", invocation_id="i1", content=types.Content(role="user", parts=[types.Part(text="hi")])),
        Event(author="bot", invocation_id="i1", content=types.Content(role="model", parts=[call, picture])),
        Event(author="bot", invocation_id="i2", actions=EventActions(state_delta={"a": 2, "b": 1})),
        Event(author="bot", invocation_id="i3", actions=EventActions(state_delta={"a": 3})),
    ]
    state = {"a": 1}
    msgs = [message(1, "system", "", ev.header_item("s", state, 100.5))]
    for i, e in enumerate(events, start=2):
        persisted = dict(e.actions.state_delta)
        msgs.append(
            message(i, "user" if e.author == "user" else "assistant", ev.text_of(e), ev.event_item(e, persisted, state))
        )
        state = state | persisted
    got_state, got_events, updated = ev.read_messages("sid", msgs)
    assert got_events == events and got_state == {"a": 3, "b": 1} and updated == events[-1].timestamp
    assert [m["content"] for m in msgs[1:]] == ["hi", "", "", ""]
    # the header and the first two events no longer returned: the state is still the whole fold
    assert ev.read_messages("sid", msgs[3:])[:2] == ({"a": 3, "b": 1}, events[2:])
    assert ev.read_messages("sid", msgs[:1]) == ({"a": 1}, [], 100.5)


def test_scopes_ids_and_values():
    app, user, own = ev.split_delta({"app:k": 1, "user:k": datetime.date(2026, 1, 2), "temp:k": 3, "k": 4})
    assert (app, user, own) == ({"app:k": 1}, {"user:k": "2026-01-02"}, {"k": 4})
    assert ev.message_id("e-1.x:y_z") == "e-1.x:y_z"
    for odd in ("a b", "x" * 200, ev.HEADER_ID, "é"):
        mid = ev.message_id(odd)
        assert mid != odd and CLIENT_MESSAGE_ID_RE.fullmatch(mid) and mid == ev.message_id(odd)
    assert ev.message_id("a b") != ev.message_id("a_b")
    # a message another client wrote (a chat turn) reads as a text event
    _, got, _ = ev.read_messages("sid", [{"seq": 3, "role": "assistant", "content": "hello", "timestamp": 9.0}])
    assert got[0].author == "assistant" and ev.text_of(got[0]) == "hello" and got[0].timestamp == 9.0
