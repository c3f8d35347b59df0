"""``ChatMemorySessionService``: ADK's ``BaseSessionService`` on chat-memory sessions.

One ADK session is one product session (the header message holds its initial state, each
event one message: ``chat_memory_client.adk._events``), found through the user's state of the
app (``chat_memory_client.adk._store``). State scopes behave as in ADK's own services:
``app:`` keys in the app's state (the product's ``state`` function, scope ``app``: a backend
identity's), ``user:`` keys in the user's state of the app, ``temp:`` keys only on the session
object in hand (never sent), the rest the session's own.

What the product makes different (docs/adk.md):
- ``get_session`` returns the events the product still holds: an active session's last
  HISTORY_MAX_LIMIT messages (100 by default, the header counting as one), an ended one's last
  MESSAGE_WINDOW (8); older ones live on as the rolling summary, and the state they set is
  kept (each event carries the state before it).
- ``list_sessions`` needs a ``user_id``: the product lists one user's sessions (a backend acts
  for one named user per call), so ``user_id=None`` raises ``NotImplementedError``.
- a state value ``None`` in a ``user:``/``app:`` delta deletes the key (the product's merge).
- ``append_event`` writes the event first, then its ``app:``/``user:`` delta: an error after
  the first (a lost answer) is completed by calling it again (the event is stored once, the
  delta merged again). An event refused (``InvalidArgument``: too large an item, a content
  past the limit) leaves nothing written and the session object unchanged.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig, ListSessionsResponse
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from typing_extensions import override

from chat_memory_client.adk import _events as ev
from chat_memory_client.adk._store import MAP_PREFIX, Store, map_key, sessions_in
from chat_memory_client.client import AsyncChatMemoryClient, ChatMemoryClient
from chat_memory_client.errors import NotFound

LIST_CONCURRENCY = 8


def _merged(session_state: dict[str, Any], app_state: dict[str, Any], user_state: dict[str, Any]) -> dict[str, Any]:
    out = dict(session_state)
    out.update({k: v for k, v in app_state.items() if k.startswith(State.APP_PREFIX)})
    out.update({k: v for k, v in user_state.items() if k.startswith(State.USER_PREFIX)})
    return out


def _window(events: list[Event], config: GetSessionConfig | None) -> list[Event]:
    if config is None:
        return events
    if config.num_recent_events is not None:
        events = events[-config.num_recent_events :] if config.num_recent_events else []
    if config.after_timestamp is not None:
        events = [e for e in events if e.timestamp >= config.after_timestamp]
    return events


class ChatMemorySessionService(BaseSessionService):
    """``ChatMemorySessionService(client=AsyncChatMemoryClient(url, backend_token))``.

    ``client``: an ``AsyncChatMemoryClient`` (or a ``ChatMemoryClient``, called in threads)
    holding a backend identity; ADK's ``user_id`` is passed on each call as the user the
    backend acts for, so it must be a product user id (1-128 of ``[A-Za-z0-9_.:@-]``).
    ``namespace``: a prefix of the product's app names and user ids (tests, several
    deployments on one project); leave it empty when ADK's user ids are the product's users.
    """

    def __init__(self, *, client: AsyncChatMemoryClient | ChatMemoryClient, namespace: str = "") -> None:
        self._store = Store(client, namespace)

    # ------------------------------------------------------------------ create
    @override
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        st, cm = self._store, self._store.cm
        name = (session_id.strip() if session_id else "") or uuid.uuid4().hex
        key = map_key(name)
        held = (await st.user_state(app_name, user_id)).get(key)
        if held is not None:
            stale = isinstance(held, dict) and isinstance(held.get("sid"), str)
            if not (stale and await st.history(held["sid"], user_id) is None):
                raise AlreadyExistsError(f"Session with id {name} already exists.")
            # its product session was erased (a delete_session whose map update was lost)
            await st.update_user(app_name, user_id, {key: None})
        app_delta, user_delta, own = ev.split_delta(dict(state or {}))
        created = await cm.create_session({"adk_app": app_name, "adk_session_id": name[:200]}, user_id=st.user(user_id))
        sid = created["session_id"]
        now = time.time()
        try:
            await cm.append_message(
                sid,
                "system",
                "",
                item=ev.header_item(name, own, now),
                client_message_id=ev.HEADER_ID,
                user_id=st.user(user_id),
            )
            entry = {"sid": sid} | ({} if key == MAP_PREFIX + name else {"id": name})
            users = await st.update_user(app_name, user_id, {key: entry}, if_absent=True)
        except BaseException:
            await self._discard(sid, user_id)
            raise
        if (users.get(key) or {}).get("sid") != sid:  # another process made it first
            await self._discard(sid, user_id)
            raise AlreadyExistsError(f"Session with id {name} already exists.")
        st.remember(app_name, user_id, name, sid)
        if user_delta:
            users = await st.update_user(app_name, user_id, user_delta)
        apps = await (st.update_app(app_name, app_delta) if app_delta else st.app_state(app_name))
        return Session(
            id=name, app_name=app_name, user_id=user_id, state=_merged(own, apps, users), last_update_time=now
        )

    async def _discard(self, sid: str, user_id: str) -> None:
        try:
            await self._store.cm.delete_session(sid, user_id=self._store.user(user_id))
        except Exception:  # noqa: BLE001, S110 - an unmapped session is invisible to ADK; best effort
            pass

    # ------------------------------------------------------------------ read
    async def _load(self, user_id: str, sid: str) -> tuple[dict[str, Any], list[Event], float] | None:
        messages = await self._store.history(sid, user_id)
        if messages is None:
            return None
        own, events, updated = ev.read_messages(sid, messages)
        return own, events, updated or 0.0

    @override
    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        st = self._store
        name = session_id.strip() if session_id else session_id
        users, apps = await asyncio.gather(st.user_state(app_name, user_id), st.app_state(app_name))
        entry = users.get(map_key(name))
        sid = entry.get("sid") if isinstance(entry, dict) else None
        if not isinstance(sid, str):
            st.remember(app_name, user_id, name, None)
            return None
        st.remember(app_name, user_id, name, sid)
        loaded = await self._load(user_id, sid)
        if loaded is None:
            return None
        own, events, updated = loaded
        return Session(
            id=name,
            app_name=app_name,
            user_id=user_id,
            state=_merged(own, apps, users),
            events=_window(events, config),
            last_update_time=updated,
        )

    @override
    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        users = await self._store.user_state(app_name, user_id)
        return {k[len(State.USER_PREFIX) :]: v for k, v in users.items() if k.startswith(State.USER_PREFIX)}

    @override
    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        if user_id is None:
            raise NotImplementedError(
                "ChatMemorySessionService lists one user's sessions: the product lists a user's "
                "sessions only (a backend acts for one named user per call); pass user_id"
            )
        st = self._store
        users, apps = await asyncio.gather(st.user_state(app_name, user_id), st.app_state(app_name))
        gate = asyncio.Semaphore(LIST_CONCURRENCY)

        async def one(name: str, sid: str) -> Session | None:
            async with gate:
                loaded = await self._load(user_id, sid)
            if loaded is None:
                return None
            own, _, updated = loaded
            return Session(
                id=name, app_name=app_name, user_id=user_id, state=_merged(own, apps, users), last_update_time=updated
            )

        got = await asyncio.gather(*(one(n, s) for n, s in sessions_in(users).items()))
        sessions = sorted((s for s in got if s is not None), key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    # ------------------------------------------------------------------ delete
    @override
    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        st = self._store
        name = session_id.strip() if session_id else session_id
        sid = await st.resolve(app_name, user_id, name)
        if sid is None:
            return
        try:
            await st.cm.delete_session(sid, user_id=st.user(user_id))
        except NotFound:
            pass  # erased already (another process, or a delete whose answer was lost)
        await st.update_user(app_name, user_id, {map_key(name): None})
        st.remember(app_name, user_id, name, None)

    # ------------------------------------------------------------------ append
    @override
    async def append_event(self, session: Session, event: Event) -> Event:
        if event.partial:
            return event
        if any(e == event for e in session.events if e.id == event.id):
            return event  # this very event was appended already (a retry after success)
        st = self._store
        sid = await st.sid_for(session.app_name, session.user_id, session.id)
        if sid is None:
            raise SessionNotFoundError(f"Session {session.id} not found.")
        delta = dict(event.actions.state_delta) if event.actions and event.actions.state_delta else {}
        app_delta, user_delta, _ = ev.split_delta(delta)
        persisted = {k: v for k, v in delta.items() if not k.startswith(State.TEMP_PREFIX)}
        item = ev.event_item(event, persisted, ev.session_scope(session.state))
        role = "user" if event.author == "user" else "assistant"
        try:
            await self._append(sid, session, role, ev.text_of(event), item, ev.message_id(event.id))
        except NotFound:
            # the id we held may be stale (deleted and made again by another process)
            fresh = await st.resolve(session.app_name, session.user_id, session.id)
            if fresh is None or fresh == sid:
                raise SessionNotFoundError(f"Session {session.id} not found.") from None
            sid = fresh
            await self._append(sid, session, role, ev.text_of(event), item, ev.message_id(event.id))
        if app_delta:
            await st.update_app(session.app_name, app_delta)
        if user_delta:
            await st.update_user(session.app_name, session.user_id, user_delta)
        await super().append_event(session=session, event=event)
        session.last_update_time = event.timestamp
        return event

    async def _append(
        self, sid: str, session: Session, role: str, content: str, item: dict[str, Any], mid: str
    ) -> None:
        await self._store.cm.append_message(
            sid, role, content, item=item, client_message_id=mid, user_id=self._store.user(session.user_id)
        )
