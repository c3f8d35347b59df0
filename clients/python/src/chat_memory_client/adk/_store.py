"""What the ADK session and memory services share: the client (sync wrapped for asyncio), the
product's names for ADK's app and user, and the map from ADK's session id to the product's.

ADK names a session ``(app_name, user_id, session_id)`` with a caller-chosen ``session_id``;
the product makes its own (32 hex). The map lives in the user's state of the app (the
product's ``state`` function, scope ``user``): key ``adk:session:<session_id>``, value
``{"sid": <product session id>}``, written with ``if_absent`` so two processes creating the
same ADK session agree on one product session (the loser erases its own). ADK's ``user:`` and
``app:`` state keys are stored under those same names (prefix kept) in the user's and the
app's state, apart from the adapter's own ``adk:`` keys.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from typing import Any

from chat_memory_client.client import AsyncChatMemoryClient, ChatMemoryClient
from chat_memory_client.errors import NotFound

MAP_PREFIX = "adk:session:"
MAX_STATE_KEY = 256  # the product's longest state key


class _Threaded:
    """A sync ``ChatMemoryClient`` seen as the async one: each call runs in a worker thread."""

    def __init__(self, client: ChatMemoryClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._client, name)

        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(fn, *args, **kwargs)

        return call


def as_async(client: AsyncChatMemoryClient | ChatMemoryClient) -> Any:
    """The client to await: the async one as it is, the sync one in threads."""
    if isinstance(client, AsyncChatMemoryClient):
        return client
    if isinstance(client, ChatMemoryClient):
        return _Threaded(client)
    raise TypeError(f"client must be an AsyncChatMemoryClient or a ChatMemoryClient, not {type(client).__name__}")


def map_key(session_id: str) -> str:
    """The user-state key of an ADK session id (a digest when the id would make it too long)."""
    key = MAP_PREFIX + session_id
    if len(key) <= MAX_STATE_KEY:
        return key
    return MAP_PREFIX + "#" + hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


class Store:
    """The product's side of one ADK service: names, the session map, and a cache of it."""

    def __init__(self, client: AsyncChatMemoryClient | ChatMemoryClient, namespace: str) -> None:
        self.cm = as_async(client)
        self.namespace = namespace
        self._sids: dict[tuple[str, str, str], str] = {}  # (app, user, ADK id) -> product id

    def app(self, app_name: str) -> str:
        return self.namespace + app_name

    def user(self, user_id: str) -> str:
        return self.namespace + user_id

    async def user_state(self, app_name: str, user_id: str) -> dict[str, Any]:
        got = await self.cm.get_state("user", self.app(app_name), user_id=self.user(user_id))
        return dict(got.get("state") or {})

    async def app_state(self, app_name: str) -> dict[str, Any]:
        got = await self.cm.get_state("app", self.app(app_name))
        return dict(got.get("state") or {})

    async def update_user(
        self, app_name: str, user_id: str, delta: dict[str, Any], *, if_absent: bool = False
    ) -> dict[str, Any]:
        got = await self.cm.update_state(
            "user", self.app(app_name), delta, if_absent=if_absent, user_id=self.user(user_id)
        )
        return dict(got.get("state") or {})

    async def update_app(self, app_name: str, delta: dict[str, Any]) -> dict[str, Any]:
        got = await self.cm.update_state("app", self.app(app_name), delta)
        return dict(got.get("state") or {})

    def remember(self, app_name: str, user_id: str, session_id: str, sid: str | None) -> None:
        if sid is None:
            self._sids.pop((app_name, user_id, session_id), None)
        else:
            self._sids[(app_name, user_id, session_id)] = sid

    def cached(self, app_name: str, user_id: str, session_id: str) -> str | None:
        return self._sids.get((app_name, user_id, session_id))

    async def resolve(self, app_name: str, user_id: str, session_id: str) -> str | None:
        """The product session id of an ADK session, or None: never created (or deleted)."""
        entry = (await self.user_state(app_name, user_id)).get(map_key(session_id))
        sid = entry.get("sid") if isinstance(entry, dict) else None
        self.remember(app_name, user_id, session_id, sid if isinstance(sid, str) else None)
        return sid if isinstance(sid, str) else None

    async def sid_for(self, app_name: str, user_id: str, session_id: str) -> str | None:
        return self.cached(app_name, user_id, session_id) or await self.resolve(app_name, user_id, session_id)

    async def history(self, sid: str, user_id: str) -> list[dict[str, Any]] | None:
        """Every message the product holds for the session (its recent window), or None: erased."""
        try:
            got = await self.cm.get_history(sid, user_id=self.user(user_id))
        except NotFound:
            return None
        return list(got.get("messages") or [])


def sessions_in(user_state: dict[str, Any]) -> dict[str, str]:
    """ADK session id -> product session id, from the user's state of the app."""
    out: dict[str, str] = {}
    for key, entry in user_state.items():
        if key.startswith(MAP_PREFIX) and isinstance(entry, dict) and isinstance(entry.get("sid"), str):
            named = entry.get("id")
            out[named if isinstance(named, str) else key[len(MAP_PREFIX) :]] = entry["sid"]
    return out
