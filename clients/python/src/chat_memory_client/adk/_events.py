"""ADK events as the product's messages, and back.

A session's first message is its header: role ``system``, content ``""``, item
``{"adk": "session", "id": <ADK session id>, "state": <initial session state>, "created": <time>}``.
Each event is one message: role ``user`` when its author is ``user``, else ``assistant``;
content the event's text (``""`` for a function call, inline data, a state-only event); item
``{"adk": "event", "event": Event.model_dump(mode="json", exclude_none=True), "state": <the
session state before it>}`` (``temp:`` keys already left out); client_message_id the event's
id, so an ADK retry of ``append_event`` is stored once. The session state read back is the
header's state with every event's delta folded in order; once older messages are no longer
returned (past HISTORY_MAX_LIMIT; an ended session keeps MESSAGE_WINDOW), from the state the
oldest event returned carries.
"""

from __future__ import annotations

import hashlib
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.state import State
from google.genai import types
from pydantic_core import to_jsonable_python

from chat_memory_client.client import CLIENT_MESSAGE_ID_RE

HEADER_ID = "adk.session"  # no ADK event id (a uuid4) takes it
SCOPED = (State.APP_PREFIX, State.USER_PREFIX, State.TEMP_PREFIX)


def session_scope(state: dict[str, Any]) -> dict[str, Any]:
    """The keys of a state that belong to the session itself (no app:, user:, temp:)."""
    return {k: v for k, v in state.items() if not k.startswith(SCOPED)}


def json_safe(state: dict[str, Any]) -> dict[str, Any]:
    """State values as JSON (datetimes, pydantic models and bytes as ADK's services store them)."""
    return dict(to_jsonable_python(state))


def split_delta(delta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(app, user, session) parts of a delta, keys as ADK writes them; temp: dropped."""
    app = {k: v for k, v in delta.items() if k.startswith(State.APP_PREFIX)}
    user = {k: v for k, v in delta.items() if k.startswith(State.USER_PREFIX)}
    return json_safe(app), json_safe(user), session_scope(delta)


def message_id(event_id: str) -> str:
    """The event's id as a client_message_id; a digest when it is not one."""
    if CLIENT_MESSAGE_ID_RE.fullmatch(event_id) and event_id != HEADER_ID:
        return event_id
    return "adk.ev." + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()[:48]


def text_of(event: Event) -> str:
    parts = event.content.parts if event.content and event.content.parts else []
    return "\n".join(p.text for p in parts if p.text and not p.thought)


def event_item(event: Event, persisted_delta: dict[str, Any], state_before: dict[str, Any]) -> dict[str, Any]:
    stored = event
    if event.actions is not None and event.actions.state_delta != persisted_delta:
        stored = event.model_copy(update={"actions": event.actions.model_copy(update={"state_delta": persisted_delta})})
    return {
        "adk": "event",
        "event": stored.model_dump(mode="json", exclude_none=True),
        "state": json_safe(state_before),
    }


def header_item(session_id: str, state: dict[str, Any], created: float) -> dict[str, Any]:
    return {"adk": "session", "id": session_id, "state": json_safe(state), "created": created}


def _foreign_event(sid: str, m: dict[str, Any]) -> Event:
    """A message another client wrote (a chat turn, a LangChain history): an event of its text."""
    role = m.get("role")
    return Event(
        id=f"cm.{sid}.{m.get('seq')}",
        invocation_id="",
        author="user" if role == "user" else "assistant",
        content=types.Content(role="user" if role == "user" else "model", parts=[types.Part(text=m["content"])]),
        timestamp=float(m.get("timestamp") or 0.0),
    )


def read_messages(sid: str, messages: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Event], float | None]:
    """(session state, events in order, last update time) from the product's messages."""
    state: dict[str, Any] | None = None
    events: list[Event] = []
    updated: float | None = None
    for m in messages:
        item = m.get("item") if isinstance(m.get("item"), dict) else None
        if item is not None and item.get("adk") == "session":
            state = dict(item.get("state") or {})
            updated = float(item.get("created") or m.get("timestamp") or 0.0)
            continue
        if item is not None and item.get("adk") == "event":
            event = Event.model_validate(item["event"])
            if state is None:
                state = dict(item.get("state") or {})
        else:
            event = _foreign_event(sid, m)
        if event.actions and event.actions.state_delta:
            state = state if state is not None else {}
            state.update(session_scope(event.actions.state_delta))
        events.append(event)
        updated = event.timestamp
    return state or {}, events, updated
