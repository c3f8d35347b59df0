"""OpenAI Agents SDK: ``ChatMemorySession``, a ``Session`` (``agents.memory.session``) on a
chat-memory session (``pip install "./clients/python[openai-agents]"``), for
``Runner.run(agent, input, session=...)``.

The mapping (docs/openai-agents.md):

- The SDK's ``session_id`` (any string the caller picks) names a product session through the
  user's state of ``app`` (scope ``user``): key ``openai-agents:session:<session_id>`` holds the
  product's session id. The first ``add_items`` creates the product session and writes the key
  with ``if_absent``, so two processes racing agree on the stored one (the loser erases the
  session it made). Reads of a name never written answer ``[]`` and create nothing.
- Each item is one product message whose ``item`` is the item dict, whole (messages, function
  calls and their outputs, reasoning, anything the SDK makes). Role ``user`` for a user message,
  ``system`` for a system or developer message, ``assistant`` for everything else; content the
  message's text, ``""`` for items without any. The assistant and system roles need a backend
  identity acting for the user (docs/security.md).
- ``add_items`` checks the whole batch before writing any (each a JSON object within
  ``MAX_ITEM_BYTES`` of compact JSON, its text within the client's ``max_content_bytes``), then
  appends the items in order, each with a ``client_message_id`` that is a digest of the name,
  the call's batch key (a uuid) and the item's index, and the batch in its ``metadata``
  (``{"openai_agents": {"batch", "index", "count"}}``). ``get_items`` shows a batch only once its
  last item is stored, so a reader never sees half a turn.
- Retries: the client sends an append again after a lost answer with the same
  ``client_message_id`` (stored once). The SDK's own retry of a session write (a ``RunState``
  resumed with a pending write) reads the tail first and calls ``add_items`` again only when
  none of the batch is visible, which the batch rule makes exact (a half-stored batch is not
  visible). A caller that calls ``add_items`` again with the same items after it raised gets
  the same batch key (kept for the last failed batch of this object), so what was stored is not
  stored twice and the batch completes. Another ``ChatMemorySession`` object or process calling
  with the same items makes a new batch: a new turn, not a retry.
- ``pop_item``: the product's messages are append-only, so popping appends a removal marker (a
  ``system`` message, content ``""``, item ``{"type": "chat_memory.removed", "seq": N}``) that
  ``get_items`` folds out together with message ``N``. The product's own context (summaries,
  ``formatted_context``, memory digests) still saw the popped text; the marker's empty content
  keeps it out of them.
- ``clear_session``: drops the mapping, then erases the product session (``delete_session``);
  the next ``add_items`` starts a new product session under the same name.
- ``get_items(limit)``: the latest ``limit`` items (or ``session_settings.limit``), oldest
  first, from the session's last ``HISTORY_LIMIT`` messages: ``get_history`` has no cursor, so
  older items are not readable (docs/openai-agents.md, "Limits").
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from agents.memory.session import SessionABC
from agents.memory.session_settings import SessionSettings, resolve_session_limit

from chat_memory_client.client import AsyncChatMemoryClient
from chat_memory_client.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

MAX_ITEM_BYTES = 32768  # the server's MAX_ITEM_BYTES default (compact JSON)
HISTORY_LIMIT = 100  # get_history's largest limit (HISTORY_MAX_LIMIT by default)
KEY_PREFIX = "openai-agents:session:"
REMOVED = "chat_memory.removed"
META = "openai_agents"


def _refuse(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(0, "invalid_argument", message, {"field": field})


def role_of(item: Mapping[str, Any]) -> str:
    """The product role of an item: user messages ``user``, system and developer ones
    ``system``, everything else (assistant messages, tool calls and outputs, reasoning)
    ``assistant``."""
    role = item.get("role")
    if role == "user":
        return "user"
    if role in ("system", "developer"):
        return "system"
    return "assistant"


def text_of(item: Mapping[str, Any]) -> str:
    """A message item's text (a string content, or its parts' ``text`` joined); ``""`` for
    items that are not messages (tool calls, outputs, reasoning)."""
    if "role" not in item:
        return ""
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _compact(item: object, index: int, *, sort_keys: bool = False) -> str:
    if not isinstance(item, Mapping):
        raise _refuse("item", f"item {index} is a {type(item).__name__}, not a JSON object")
    try:  # the server's measure (shared/core/models.item_text): compact, UTF-8, no NaN
        text = json.dumps(item, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=sort_keys)
        text.encode()
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as exc:
        raise _refuse("item", f"item {index} is not JSON (finite numbers, Unicode strings): {exc}") from exc
    return text


def _is_marker(role: str, item: Mapping[str, Any]) -> bool:
    return role == "system" and item.get("type") == REMOVED


class ChatMemorySession(SessionABC):
    """An OpenAI Agents session kept in chat-memory. ``client``: an ``AsyncChatMemoryClient``
    (a backend's token: the assistant's items are written for ``user_id``); ``app``: the
    state's app name (1-128 of ``[A-Za-z0-9_.:@-]``) that scopes the mapping."""

    def __init__(
        self,
        session_id: str,
        *,
        client: AsyncChatMemoryClient,
        app: str,
        user_id: str | None = None,
        session_settings: SessionSettings | None = None,
    ) -> None:
        self.session_id = session_id
        self.client = client
        self.app = app
        self.user_id = user_id
        self.session_settings = session_settings
        self._key = KEY_PREFIX + session_id
        self._sid: str | None = None  # the product session, once known
        self._failed: tuple[str, str] | None = None  # (the batch's digest, its key) of a call that raised

    # -- the mapping ---------------------------------------------------------------------
    async def product_session_id(self, *, create: bool = False) -> str | None:
        """The product session this name maps to (read from the state once per object, or
        after the session was erased); with ``create``, made and stored when there is none."""
        if self._sid is None:
            got = await self.client.get_state("user", self.app, user_id=self.user_id)
            value = got["state"].get(self._key)
            self._sid = value if isinstance(value, str) else None
        if self._sid is None and create:
            made = await self.client.create_session({"platform": "openai-agents"}, user_id=self.user_id)
            stored = await self.client.update_state(
                "user", self.app, {self._key: made["session_id"]}, if_absent=True, user_id=self.user_id
            )
            self._sid = stored["state"][self._key]
            if self._sid != made["session_id"]:  # another process won: its session is the one
                await self.client.delete_session(made["session_id"], user_id=self.user_id)
        return self._sid

    async def _forget_erased(self, sid: str) -> None:
        """The mapped session is gone (erased outside this adapter): drop the mapping if it
        still names it, so the next write starts a new session."""
        got = await self.client.get_state("user", self.app, user_id=self.user_id)
        if got["state"].get(self._key) == sid:
            await self.client.update_state("user", self.app, {self._key: None}, user_id=self.user_id)
        self._sid = None

    # -- reads -----------------------------------------------------------------------------
    async def _visible(self) -> list[tuple[int, dict[str, Any]]]:
        """(seq, item) of every visible item, oldest first: markers and what they removed
        folded out, batches whose last item is not stored yet left out."""
        sid = await self.product_session_id()
        if sid is None:
            return []
        try:
            hist = await self.client.get_history(sid, limit=HISTORY_LIMIT, user_id=self.user_id)
        except NotFound:
            await self._forget_erased(sid)
            return []
        msgs: list[tuple[int, str, dict[str, Any], dict[str, Any]]] = []  # seq, role, item, batch
        for m in hist["messages"]:
            item = m.get("item")
            if isinstance(item, dict):
                batch = (m.get("metadata") or {}).get(META)
                msgs.append((int(m["seq"]), m["role"], item, batch if isinstance(batch, dict) else {}))
        removed = {item.get("seq") for _, role, item, _ in msgs if _is_marker(role, item)}
        complete = {b.get("batch") for _, _, _, b in msgs if b and b.get("index") == b.get("count", 0) - 1}
        return [
            (seq, item)
            for seq, role, item, b in msgs
            if not _is_marker(role, item) and seq not in removed and (not b or b.get("batch") in complete)
        ]

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        n = resolve_session_limit(limit, self.session_settings)
        items = [item for _, item in await self._visible()]
        if n is not None:
            items = items[-n:] if n > 0 else []
        return cast("list[TResponseInputItem]", items)

    # -- writes ----------------------------------------------------------------------------
    async def add_items(self, items: list[TResponseInputItem]) -> None:
        if not items:
            return
        limit = self.client.calls.max_content_bytes
        checked: list[tuple[str, str, dict[str, Any]]] = []
        for i, item in enumerate(cast("Sequence[object]", items)):
            compact = _compact(item, i)
            if len(compact.encode()) > MAX_ITEM_BYTES:
                raise _refuse("item", f"item {i} is larger than {MAX_ITEM_BYTES} bytes of JSON")
            whole = json.loads(compact)  # a copy: the caller's dict may change afterwards
            text = text_of(whole)
            text = text if text.strip() else ""  # blank text is no text: the item holds it whole
            if len(text.encode()) > limit:
                raise _refuse("content", f"item {i}'s text is larger than {limit} bytes")
            checked.append((role_of(whole), text, whole))
        digest = hashlib.sha256("\n".join(_compact(x, 0, sort_keys=True) for _, _, x in checked).encode()).hexdigest()
        batch = self._failed[1] if self._failed and self._failed[0] == digest else uuid.uuid4().hex
        self._failed = (digest, batch)
        sid = await self.product_session_id(create=True)
        assert sid is not None
        for attempt in range(2):
            try:
                await self._append_batch(sid, batch, checked)
                break
            except NotFound:
                if attempt:
                    raise
                await self._forget_erased(sid)  # erased elsewhere: a new session, the batch again
                sid = await self.product_session_id(create=True)
                assert sid is not None
        self._failed = None

    async def _append_batch(self, sid: str, batch: str, checked: list[tuple[str, str, dict[str, Any]]]) -> None:
        for i, (role, text, item) in enumerate(checked):
            await self.client.append_message(
                sid,
                role,
                text,
                {META: {"batch": batch, "index": i, "count": len(checked)}},
                client_message_id=self._message_id(batch, i),
                item=item,
                user_id=self.user_id,
            )

    def _message_id(self, batch: str, index: int) -> str:
        raw = f"{self.session_id}\n{batch}\n{index}"
        return "oa-" + hashlib.sha256(raw.encode()).hexdigest()[:48]

    async def pop_item(self) -> TResponseInputItem | None:
        visible = await self._visible()
        if not visible:
            return None
        seq, item = visible[-1]
        sid = await self.product_session_id()
        assert sid is not None
        await self.client.append_message(
            sid,
            "system",
            "",
            client_message_id=self._message_id("removed", seq),  # a retried pop of N: one marker
            item={"type": REMOVED, "seq": seq},
            user_id=self.user_id,
        )
        return cast("TResponseInputItem", item)

    async def clear_session(self) -> None:
        sid = await self.product_session_id()
        if sid is None:
            return
        await self.client.update_state("user", self.app, {self._key: None}, user_id=self.user_id)
        self._sid = None
        try:
            await self.client.delete_session(sid, user_id=self.user_id)
        except NotFound:
            pass  # erased already
