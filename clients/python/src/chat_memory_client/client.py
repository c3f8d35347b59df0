"""``ChatMemoryClient`` and ``AsyncChatMemoryClient``: every HTTP function of chat-memory
(openapi.yaml), the same methods sync and async, answers as the API's JSON typed
(``chat_memory_client.types``).

Retries: up to ``retries`` more attempts, backoff 0.2 s doubling to 5 s with jitter, or the
server's Retry-After (at most 20 s). Which failures are retried depends on what repeating the
request can do:

- Always: a connection that could not be made (``ConnectError``, ``ConnectTimeout``,
  ``PoolTimeout``): nothing was sent. And 429 and 503: the functions answer them before
  anything is done (the rate limiter; token verification down, a store down, Redis full), or,
  for an erasure, "call again to complete it" (``shared/features/erasure.py``). For
  ``create_session`` every 503 it answers comes before a session is written
  (``SessionManager.create_session``: the slot claim refuses on a full Redis, and "no store
  reachable" creates nothing).
- After a lost answer (a read timeout, a connection dropped after sending), only what
  repeating cannot duplicate or misreport: every GET; ``append_message`` and ``chat``, which
  always carry a ``client_message_id`` (made with uuid4 when the caller gives none, and the
  same one sent again), so the server stores the turn once and answers the first result (a
  chat retry does not ask the responder again); ``end_session``: ending an ended session
  answers the stored result of the first end (``shared/core/ending.py``: ``already_ended``).
- Not after a lost answer: ``create_session`` (the first request may have made a session, a
  retry would make a second), ``delete_session``, ``delete_memory``, ``delete_my_data`` (the
  first request may have erased: a retry would answer ``erased: 0`` or 404, misreporting what
  happened). They raise ``TransportError``; call again knowingly.

Input is checked before sending where the client can know the rule (a role, a content that is
a non-blank string within ``max_content_bytes``, a ``client_message_id``'s characters): an
``InvalidArgument`` with ``status`` 0, nothing sent.
A backend acting for a user passes ``user_id`` (to the constructor, for every call, or per call).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from chat_memory_client import types as t
from chat_memory_client.errors import (
    ChatMemoryError,
    InvalidArgument,
    RateLimited,
    TransportError,
    Unavailable,
    error_from,
)

Token = str | Callable[[], str]
MAX_BACKOFF_S = 5.0
MAX_RETRY_AFTER_S = 20.0
DEFAULT_MAX_CONTENT_BYTES = 32 * 1024  # the server's MAX_CONTENT_BYTES default
ROLES = ("user", "assistant", "system")
CLIENT_MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_UNSENT = httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout


@dataclass(frozen=True)
class _Call:
    method: str  # GET or POST
    fn: str
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    repeatable: bool = True  # may be sent again after its answer was lost (the module's docstring)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _refuse(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(0, "invalid_argument", message, {"field": field})


def check_message(
    role: object, content: object, client_message_id: object, max_content_bytes: int, item: object = None
) -> None:
    """What the server would refuse with 400/413, refused here before anything is sent. With an
    ``item`` (a framework's whole item, a JSON object), ``content`` may be the empty string."""
    if role not in ROLES:
        raise _refuse("role", f"role must be one of {', '.join(ROLES)}")
    if not isinstance(content, str):
        raise _refuse("content", f"content must be a string, not {type(content).__name__}")
    if item is not None and not isinstance(item, dict):
        raise _refuse("item", f"item must be a JSON object, not {type(item).__name__}")
    if not content.strip() and (item is None or content):
        raise _refuse("content", "content is blank" + ("" if item is None else ": give text, or '' with an item"))
    if len(content.encode()) > max_content_bytes:
        raise _refuse("content", f"content is larger than {max_content_bytes} bytes")
    if client_message_id is not None and not (
        isinstance(client_message_id, str) and CLIENT_MESSAGE_ID_RE.fullmatch(client_message_id)
    ):
        raise _refuse("client_message_id", "client_message_id must be 1-128 characters of [A-Za-z0-9_.:-]")


class _Calls:
    """What each function sends: one place for the sync and async clients."""

    def __init__(self, user_id: str | None, max_content_bytes: int) -> None:
        self.user_id = user_id
        self.max_content_bytes = max_content_bytes

    def _acting(self, user_id: str | None) -> dict[str, Any]:
        uid = user_id or self.user_id
        return {"user_id": uid} if uid else {}

    def create_session(self, user_info: dict[str, Any] | None, memory: bool | None, user_id: str | None) -> _Call:
        body = _clean({"user_info": user_info, "memory": memory}) | self._acting(user_id)
        return _Call("POST", "create_session", body=body, repeatable=False)

    def append_message(
        self,
        session_id: str,
        role: str,
        content: str,
        metadata: dict[str, Any] | None,
        client_message_id: str | None,
        user_id: str | None,
        *,
        item: dict[str, Any] | None = None,
    ) -> _Call:
        check_message(role, content, client_message_id, self.max_content_bytes, item)
        body = {
            "session_id": session_id,
            "role": role,
            "content": content,
            "client_message_id": client_message_id or uuid.uuid4().hex,
        } | _clean({"metadata": metadata, "item": item})
        return _Call("POST", "append_message", body=body | self._acting(user_id))

    def chat(self, session_id: str, content: str, client_message_id: str | None, user_id: str | None) -> _Call:
        check_message("user", content, client_message_id, self.max_content_bytes)
        body = {
            "session_id": session_id,
            "content": content,
            "client_message_id": client_message_id or uuid.uuid4().hex,
        }
        return _Call("POST", "chat", body=body | self._acting(user_id))

    def update_state(self, scope: str, app: str, delta: dict[str, Any], if_absent: bool, user_id: str | None) -> _Call:
        if not isinstance(delta, dict) or not delta:
            raise _refuse("delta", "delta must be a non-empty dict of keys to set (None deletes)")
        body = {"scope": scope, "app": app, "delta": delta, "if_absent": if_absent}
        return _Call("POST", "update_state", body=body | self._acting(user_id))  # a merge repeats harmlessly

    def get(self, fn: str, params: dict[str, Any], user_id: str | None = None, *, acting: bool = True) -> _Call:
        return _Call("GET", fn, params=_clean(params) | (self._acting(user_id) if acting else {}))

    def post(
        self, fn: str, body: dict[str, Any], user_id: str | None = None, *, acting: bool = True, repeatable: bool
    ) -> _Call:
        return _Call("POST", fn, body=_clean(body) | (self._acting(user_id) if acting else {}), repeatable=repeatable)


class _Base:
    def __init__(
        self,
        base_url: str,
        token: Token | None,
        *,
        user_id: str | None,
        timeout: float,
        retries: int,
        max_content_bytes: int,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.retries = retries
        self.timeout = timeout
        self.calls = _Calls(user_id, max_content_bytes)

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
        """Seconds to wait before sending ``call`` again after ``exc``, or None: do not."""
        if attempt >= self.retries:
            return None
        if isinstance(exc, RateLimited | Unavailable) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), MAX_RETRY_AFTER_S)
        if isinstance(exc, _UNSENT | RateLimited | Unavailable):
            pass  # nothing sent, or refused before anything was done: always safe
        elif isinstance(exc, httpx.TransportError):
            if not call.repeatable:
                return None  # the answer was lost: what happened is unknown
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
        max_content_bytes: int = DEFAULT_MAX_CONTENT_BYTES,
    ) -> None:
        super().__init__(
            base_url, token, user_id=user_id, timeout=timeout, retries=retries, max_content_bytes=max_content_bytes
        )
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatMemoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, call: _Call) -> Any:
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
    ) -> t.SessionCreated:
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
        item: dict[str, Any] | None = None,
    ) -> t.Appended:
        return self._send(
            self.calls.append_message(session_id, role, content, metadata, client_message_id, user_id, item=item)
        )

    def get_context(self, session_id: str, *, max_messages: int | None = None, user_id: str | None = None) -> t.Context:
        return self._send(
            self.calls.get("get_context", {"session_id": session_id, "max_messages": max_messages}, user_id)
        )

    def get_history(self, session_id: str, *, limit: int | None = None, user_id: str | None = None) -> t.History:
        return self._send(self.calls.get("get_history", {"session_id": session_id, "limit": limit}, user_id))

    def end_session(
        self, session_id: str, *, reason: str | None = None, agent_id: str | None = None, user_id: str | None = None
    ) -> t.EndResult:
        body = {"session_id": session_id, "reason": reason, "agent_id": agent_id}
        return self._send(self.calls.post("end_session", body, user_id, repeatable=True))

    def chat(
        self, session_id: str, content: str, *, client_message_id: str | None = None, user_id: str | None = None
    ) -> t.ChatTurn:
        return self._send(self.calls.chat(session_id, content, client_message_id, user_id))

    def delete_session(self, session_id: str, *, user_id: str | None = None) -> t.SessionErased:
        return self._send(self.calls.post("delete_session", {"session_id": session_id}, user_id, repeatable=False))

    def list_sessions(
        self, *, limit: int | None = None, cursor: str | None = None, user_id: str | None = None
    ) -> t.SessionPage:
        return self._send(self.calls.get("list_sessions", {"limit": limit, "cursor": cursor}, user_id))

    # -- memories --------------------------------------------------------------------------
    def list_memories(
        self, *, limit: int | None = None, cursor: str | None = None, user_id: str | None = None
    ) -> t.MemoryPage:
        return self._send(self.calls.get("list_memories", {"limit": limit, "cursor": cursor}, user_id))

    def search_memories(self, q: str, *, limit: int | None = None, user_id: str | None = None) -> t.MemoryPage:
        return self._send(self.calls.get("search_memories", {"q": q, "limit": limit}, user_id))

    def delete_memory(self, session_id: str) -> t.MemoryDeleted:
        return self._send(self.calls.post("delete_memory", {"session_id": session_id}, acting=False, repeatable=False))

    # -- a framework's state -------------------------------------------------------------------
    def get_state(self, scope: str, app: str, *, user_id: str | None = None) -> t.StateAnswer:
        """The caller's state of ``app`` (scope ``user``) or the app's own (``app``: backends)."""
        return self._send(self.calls.get("get_state", {"scope": scope, "app": app}, user_id))

    def update_state(
        self, scope: str, app: str, delta: dict[str, Any], *, if_absent: bool = False, user_id: str | None = None
    ) -> t.StateAnswer:
        """Merge ``delta`` (None deletes a key; ``if_absent``: only keys not present), the new
        whole state. Repeating a merge changes nothing more: retried after a lost answer."""
        return self._send(self.calls.update_state(scope, app, delta, if_absent, user_id))

    # -- the caller's own data ---------------------------------------------------------------
    def get_user_stats(self) -> t.UserStats:
        return self._send(self.calls.get("get_user_stats", {}, acting=False))

    def export_my_data(self, *, limit: int | None = None, cursor: str | None = None) -> t.ExportPage:
        """One page of the caller's export; ``iter_export`` walks them all."""
        return self._send(self.calls.get("export_my_data", {"limit": limit, "cursor": cursor}, acting=False))

    def iter_export(self, *, limit: int | None = None) -> Iterator[t.ExportPage]:
        """Every page of the caller's export, in order (each page's ``next_cursor`` followed)."""
        cursor = None
        while True:
            page = self.export_my_data(limit=limit, cursor=cursor)
            yield page
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def delete_my_data(self) -> t.ErasureReceipt:
        return self._send(self.calls.post("delete_my_data", {"confirm": True}, acting=False, repeatable=False))

    def health(self) -> t.Health:
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
        max_content_bytes: int = DEFAULT_MAX_CONTENT_BYTES,
    ) -> None:
        super().__init__(
            base_url, token, user_id=user_id, timeout=timeout, retries=retries, max_content_bytes=max_content_bytes
        )
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncChatMemoryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, call: _Call) -> Any:
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
    ) -> Awaitable[t.SessionCreated]:
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
        item: dict[str, Any] | None = None,
    ) -> Awaitable[t.Appended]:
        return self._send(
            self.calls.append_message(session_id, role, content, metadata, client_message_id, user_id, item=item)
        )

    def get_context(
        self, session_id: str, *, max_messages: int | None = None, user_id: str | None = None
    ) -> Awaitable[t.Context]:
        return self._send(
            self.calls.get("get_context", {"session_id": session_id, "max_messages": max_messages}, user_id)
        )

    def get_history(
        self, session_id: str, *, limit: int | None = None, user_id: str | None = None
    ) -> Awaitable[t.History]:
        return self._send(self.calls.get("get_history", {"session_id": session_id, "limit": limit}, user_id))

    def end_session(
        self, session_id: str, *, reason: str | None = None, agent_id: str | None = None, user_id: str | None = None
    ) -> Awaitable[t.EndResult]:
        body = {"session_id": session_id, "reason": reason, "agent_id": agent_id}
        return self._send(self.calls.post("end_session", body, user_id, repeatable=True))

    def chat(
        self, session_id: str, content: str, *, client_message_id: str | None = None, user_id: str | None = None
    ) -> Awaitable[t.ChatTurn]:
        return self._send(self.calls.chat(session_id, content, client_message_id, user_id))

    def delete_session(self, session_id: str, *, user_id: str | None = None) -> Awaitable[t.SessionErased]:
        return self._send(self.calls.post("delete_session", {"session_id": session_id}, user_id, repeatable=False))

    def list_sessions(
        self, *, limit: int | None = None, cursor: str | None = None, user_id: str | None = None
    ) -> Awaitable[t.SessionPage]:
        return self._send(self.calls.get("list_sessions", {"limit": limit, "cursor": cursor}, user_id))

    def list_memories(
        self, *, limit: int | None = None, cursor: str | None = None, user_id: str | None = None
    ) -> Awaitable[t.MemoryPage]:
        return self._send(self.calls.get("list_memories", {"limit": limit, "cursor": cursor}, user_id))

    def search_memories(
        self, q: str, *, limit: int | None = None, user_id: str | None = None
    ) -> Awaitable[t.MemoryPage]:
        return self._send(self.calls.get("search_memories", {"q": q, "limit": limit}, user_id))

    def delete_memory(self, session_id: str) -> Awaitable[t.MemoryDeleted]:
        return self._send(self.calls.post("delete_memory", {"session_id": session_id}, acting=False, repeatable=False))

    def get_state(self, scope: str, app: str, *, user_id: str | None = None) -> Awaitable[t.StateAnswer]:
        return self._send(self.calls.get("get_state", {"scope": scope, "app": app}, user_id))

    def update_state(
        self, scope: str, app: str, delta: dict[str, Any], *, if_absent: bool = False, user_id: str | None = None
    ) -> Awaitable[t.StateAnswer]:
        return self._send(self.calls.update_state(scope, app, delta, if_absent, user_id))

    def get_user_stats(self) -> Awaitable[t.UserStats]:
        return self._send(self.calls.get("get_user_stats", {}, acting=False))

    def export_my_data(self, *, limit: int | None = None, cursor: str | None = None) -> Awaitable[t.ExportPage]:
        return self._send(self.calls.get("export_my_data", {"limit": limit, "cursor": cursor}, acting=False))

    async def iter_export(self, *, limit: int | None = None) -> AsyncIterator[t.ExportPage]:
        """Every page of the caller's export, in order (``async for page in cm.iter_export()``)."""
        cursor = None
        while True:
            page = await self.export_my_data(limit=limit, cursor=cursor)
            yield page
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def delete_my_data(self) -> Awaitable[t.ErasureReceipt]:
        return self._send(self.calls.post("delete_my_data", {"confirm": True}, acting=False, repeatable=False))

    def health(self) -> Awaitable[t.Health]:
        return self._send(self.calls.get("health", {}, acting=False))
