"""``ChatMemoryClient`` and ``AsyncChatMemoryClient``: every HTTP function of chat-memory
(openapi.yaml), the same methods sync and async, answers as the API's JSON (dicts).

Retries (``retries`` times, backoff 0.2 s doubling to 5 s, or the server's Retry-After):
- a request that surely never reached a function (the connection could not be made) is
  always retried;
- on 429, 503 and a lost answer (a timeout or a dropped connection after sending), only what
  is safe to repeat: every GET; ``append_message`` and ``chat``, which always carry a
  ``client_message_id`` (one is made if the caller gives none, and the same one is sent
  again), so the server stores the message once and answers the first result again;
  ``end_session`` (ending an ended session answers the same result), ``delete_session``,
  ``delete_my_data`` and ``delete_memory`` (a second call erases nothing more). Not
  ``create_session``: a lost answer may mean a session was made, and a retry would make a
  second one; it is retried only when the connection could not be made, or on 429 (the
  limiter refuses before anything is done).
A backend acting for a user passes ``user_id`` (to the constructor, for every call, or per call).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from chat_memory_client.errors import ChatMemoryError, RateLimited, TransportError, Unavailable, error_from

Token = str | Callable[[], str]
MAX_BACKOFF_S = 5.0


@dataclass(frozen=True)
class _Call:
    method: str  # GET or POST
    fn: str
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    safe: bool = True  # may be repeated after an answer was lost (see the module's docstring)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class _Calls:
    """What each function sends: one place for the sync and async clients."""

    def __init__(self, user_id: str | None) -> None:
        self.user_id = user_id

    def _acting(self, user_id: str | None) -> dict[str, Any]:
        uid = user_id or self.user_id
        return {"user_id": uid} if uid else {}

    def create_session(self, user_info: dict[str, Any] | None, memory: bool | None, user_id: str | None) -> _Call:
        body = _clean({"user_info": user_info, "memory": memory}) | self._acting(user_id)
        return _Call("POST", "create_session", body=body, safe=False)

    def append_message(
        self,
        session_id: str,
        role: str,
        content: str,
        metadata: dict[str, Any] | None,
        client_message_id: str | None,
        user_id: str | None,
    ) -> _Call:
        if not isinstance(content, str):
            raise TypeError("content must be a string")
        body = {
            "session_id": session_id,
            "role": role,
            "content": content,
            "client_message_id": client_message_id or uuid.uuid4().hex,
        } | _clean({"metadata": metadata})
        return _Call("POST", "append_message", body=body | self._acting(user_id))

    def chat(self, session_id: str, content: str, client_message_id: str | None, user_id: str | None) -> _Call:
        body = {
            "session_id": session_id,
            "content": content,
            "client_message_id": client_message_id or uuid.uuid4().hex,
        }
        return _Call("POST", "chat", body=body | self._acting(user_id))

    def get(self, fn: str, params: dict[str, Any], user_id: str | None = None, *, acting: bool = True) -> _Call:
        return _Call("GET", fn, params=_clean(params) | (self._acting(user_id) if acting else {}))

    def post(self, fn: str, body: dict[str, Any], user_id: str | None = None, *, acting: bool = True) -> _Call:
        return _Call("POST", fn, body=_clean(body) | (self._acting(user_id) if acting else {}))


class _Base:
    def __init__(
        self, base_url: str, token: Token | None, *, user_id: str | None, timeout: float, retries: int
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.retries = retries
        self.timeout = timeout
        self.calls = _Calls(user_id)

    def _headers(self) -> dict[str, str]:
        token = self._token() if callable(self._token) else self._token
        return {"Authorization": f"Bearer {token}"} if token else {}

    @staticmethod
    def _answer(r: httpx.Response) -> dict[str, Any]:
        try:
            body = r.json() if r.content else {}
        except ValueError:
            body = None
        if r.status_code >= 400:  # noqa: PLR2004 - HTTP
            raise error_from(r.status_code, body, r.headers.get("Retry-After"))
        if not isinstance(body, dict):
            raise ChatMemoryError(r.status_code, "bad_answer", "the service answered something that is not JSON")
        return body

    def _retry_after(self, exc: Exception, call: _Call, attempt: int) -> float | None:
        """Seconds to wait before trying ``call`` again after ``exc``, or None: do not."""
        if attempt >= self.retries:
            return None
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            pass  # never reached a function: always safe
        elif isinstance(exc, RateLimited):
            if exc.retry_after is not None:
                return min(exc.retry_after, MAX_BACKOFF_S * 4)
        elif isinstance(exc, Unavailable | httpx.TransportError):
            if not call.safe:
                return None
        else:
            return None
        return min(MAX_BACKOFF_S, 0.2 * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311 - jitter


class ChatMemoryClient(_Base):
    """The sync client. ``token``: a Firebase ID token (or a backend's), or a callable giving
    one (called per request: a provider that refreshes, ``chat_memory_client.auth``)."""

    def __init__(
        self,
        base_url: str,
        token: Token | None = None,
        *,
        user_id: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token, user_id=user_id, timeout=timeout, retries=retries)
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatMemoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, call: _Call) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                r = self._http.request(
                    call.method,
                    f"{self.base_url}/{call.fn}",
                    params=call.params,
                    json=call.body,
                    headers=self._headers(),
                )
                return self._answer(r)
            except (httpx.TransportError, ChatMemoryError) as exc:
                wait = self._retry_after(exc, call, attempt)
                if wait is None:
                    if isinstance(exc, httpx.TransportError):
                        raise TransportError(f"{call.fn}: {type(exc).__name__}: {exc}") from exc
                    raise
                time.sleep(wait)
                attempt += 1

    # -- sessions and messages -----------------------------------------------------------
    def create_session(
        self, user_info: dict[str, Any] | None = None, *, memory: bool | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        return self._send(self.calls.create_session(user_info, memory, user_id))

    def append_message(
        self,
        session_id: str,
        role: str,
        content: str,
        metadata: dict[str, Any] | None = None,
        *,
        client_message_id: str | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        return self._send(self.calls.append_message(session_id, role, content, metadata, client_message_id, user_id))

    def get_context(
        self, session_id: str, *, max_messages: int | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        return self._send(
            self.calls.get("get_context", {"session_id": session_id, "max_messages": max_messages}, user_id)
        )

    def get_history(self, session_id: str, *, limit: int | None = None, user_id: str | None = None) -> dict[str, Any]:
        return self._send(self.calls.get("get_history", {"session_id": session_id, "limit": limit}, user_id))

    def end_session(
        self, session_id: str, *, reason: str | None = None, agent_id: str | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        body = {"session_id": session_id, "reason": reason, "agent_id": agent_id}
        return self._send(self.calls.post("end_session", body, user_id))

    def chat(
        self, session_id: str, content: str, *, client_message_id: str | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        return self._send(self.calls.chat(session_id, content, client_message_id, user_id))

    def delete_session(self, session_id: str, *, user_id: str | None = None) -> dict[str, Any]:
        return self._send(self.calls.post("delete_session", {"session_id": session_id}, user_id))

    def list_sessions(
        self, *, limit: int | None = None, cursor: str | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        return self._send(self.calls.get("list_sessions", {"limit": limit, "cursor": cursor}, user_id))

    # -- memories --------------------------------------------------------------------------
    def list_memories(
        self, *, limit: int | None = None, cursor: str | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        return self._send(self.calls.get("list_memories", {"limit": limit, "cursor": cursor}, user_id))

    def search_memories(self, q: str, *, limit: int | None = None, user_id: str | None = None) -> dict[str, Any]:
        return self._send(self.calls.get("search_memories", {"q": q, "limit": limit}, user_id))

    def delete_memory(self, session_id: str) -> dict[str, Any]:
        return self._send(self.calls.post("delete_memory", {"session_id": session_id}, acting=False))

    # -- the caller's own data ---------------------------------------------------------------
    def get_user_stats(self) -> dict[str, Any]:
        return self._send(self.calls.get("get_user_stats", {}, acting=False))

    def export_my_data(self, *, limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
        """One page of the caller's export; ``iter_export`` walks them all."""
        return self._send(self.calls.get("export_my_data", {"limit": limit, "cursor": cursor}, acting=False))

    def iter_export(self, *, limit: int | None = None) -> Any:
        cursor = None
        while True:
            page = self.export_my_data(limit=limit, cursor=cursor)
            yield page
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def delete_my_data(self) -> dict[str, Any]:
        return self._send(self.calls.post("delete_my_data", {"confirm": True}, acting=False))

    def health(self) -> dict[str, Any]:
        return self._send(self.calls.get("health", {}, acting=False))


class AsyncChatMemoryClient(_Base):
    """The async client: the same methods as ``ChatMemoryClient``, awaited."""

    def __init__(
        self,
        base_url: str,
        token: Token | None = None,
        *,
        user_id: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token, user_id=user_id, timeout=timeout, retries=retries)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncChatMemoryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, call: _Call) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                r = await self._http.request(
                    call.method,
                    f"{self.base_url}/{call.fn}",
                    params=call.params,
                    json=call.body,
                    headers=self._headers(),
                )
                return self._answer(r)
            except (httpx.TransportError, ChatMemoryError) as exc:
                wait = self._retry_after(exc, call, attempt)
                if wait is None:
                    if isinstance(exc, httpx.TransportError):
                        raise TransportError(f"{call.fn}: {type(exc).__name__}: {exc}") from exc
                    raise
                await asyncio.sleep(wait)
                attempt += 1

    def create_session(
        self, user_info: dict[str, Any] | None = None, *, memory: bool | None = None, user_id: str | None = None
    ) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.create_session(user_info, memory, user_id))

    def append_message(
        self,
        session_id: str,
        role: str,
        content: str,
        metadata: dict[str, Any] | None = None,
        *,
        client_message_id: str | None = None,
        user_id: str | None = None,
    ) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.append_message(session_id, role, content, metadata, client_message_id, user_id))

    def get_context(
        self, session_id: str, *, max_messages: int | None = None, user_id: str | None = None
    ) -> Awaitable[dict[str, Any]]:
        return self._send(
            self.calls.get("get_context", {"session_id": session_id, "max_messages": max_messages}, user_id)
        )

    def get_history(
        self, session_id: str, *, limit: int | None = None, user_id: str | None = None
    ) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.get("get_history", {"session_id": session_id, "limit": limit}, user_id))

    def end_session(
        self, session_id: str, *, reason: str | None = None, agent_id: str | None = None, user_id: str | None = None
    ) -> Awaitable[dict[str, Any]]:
        body = {"session_id": session_id, "reason": reason, "agent_id": agent_id}
        return self._send(self.calls.post("end_session", body, user_id))

    def chat(
        self, session_id: str, content: str, *, client_message_id: str | None = None, user_id: str | None = None
    ) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.chat(session_id, content, client_message_id, user_id))

    def delete_session(self, session_id: str, *, user_id: str | None = None) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.post("delete_session", {"session_id": session_id}, user_id))

    def list_sessions(
        self, *, limit: int | None = None, cursor: str | None = None, user_id: str | None = None
    ) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.get("list_sessions", {"limit": limit, "cursor": cursor}, user_id))

    def list_memories(
        self, *, limit: int | None = None, cursor: str | None = None, user_id: str | None = None
    ) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.get("list_memories", {"limit": limit, "cursor": cursor}, user_id))

    def search_memories(
        self, q: str, *, limit: int | None = None, user_id: str | None = None
    ) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.get("search_memories", {"q": q, "limit": limit}, user_id))

    def delete_memory(self, session_id: str) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.post("delete_memory", {"session_id": session_id}, acting=False))

    def get_user_stats(self) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.get("get_user_stats", {}, acting=False))

    def export_my_data(self, *, limit: int | None = None, cursor: str | None = None) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.get("export_my_data", {"limit": limit, "cursor": cursor}, acting=False))

    def delete_my_data(self) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.post("delete_my_data", {"confirm": True}, acting=False))

    def health(self) -> Awaitable[dict[str, Any]]:
        return self._send(self.calls.get("health", {}, acting=False))
