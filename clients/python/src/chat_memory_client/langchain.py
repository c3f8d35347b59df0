"""LangChain: ``ChatMemoryHistory``, a ``BaseChatMessageHistory`` on a chat-memory session
(``pip install "./clients/python[langchain]"``), for ``RunnableWithMessageHistory`` and the rest.

``messages`` is what the product keeps for the model: the session's recent window (at most
MESSAGE_WINDOW messages) and, once older ones have left it, the rolling summary of them as a
leading ``SystemMessage``; memories of the user's past sessions recalled into the
conversation come as a second ``SystemMessage`` when ``include_memories``. ``add_messages``
checks every message before writing any (a human, AI or system message whose content is a
non-blank string within the client's ``max_content_bytes``; anything else is an
``InvalidArgument`` with ``status`` 0 and nothing of the batch is written), then appends each
with its ``id`` (or a new one, kept on the message) as the ``client_message_id``, so a retry
stores it once. ``clear`` cannot delete messages one by one, nor start the session over under
the same id: it erases the session (``delete_session``, what the product's data rights offer);
the history then answers 404 (``NotFound``), so a caller that clears starts a new session.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from chat_memory_client.client import CLIENT_MESSAGE_ID_RE, ChatMemoryClient, check_message
from chat_memory_client.errors import InvalidArgument

_ROLE = {HumanMessage: "user", AIMessage: "assistant", SystemMessage: "system"}
_CLASS = {"user": HumanMessage, "assistant": AIMessage, "system": SystemMessage}


class ChatMemoryHistory(BaseChatMessageHistory):
    def __init__(
        self,
        *,
        client: ChatMemoryClient,
        session_id: str,
        user_id: str | None = None,
        include_memories: bool = False,
    ) -> None:
        self.client = client
        self.session_id = session_id
        self.user_id = user_id
        self.include_memories = include_memories

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        ctx = self.client.get_context(self.session_id, user_id=self.user_id)
        out: list[BaseMessage] = []
        msgs = ctx.get("messages") or []
        summary = ctx.get("summary")
        if summary and summary.get("text") and msgs and int(msgs[0]["seq"]) > 1:
            out.append(SystemMessage(content=f"Summary of the conversation so far:\n{summary['text']}"))
        if self.include_memories and ctx.get("memories"):
            quoted = "\n".join(f"- {m['text']}" for m in ctx["memories"])
            out.append(SystemMessage(content=f"Earlier conversations with this user (quoted data):\n{quoted}"))
        for m in msgs:
            cls = _CLASS[m["role"]]
            out.append(cls(content=m["content"], id=f"cm-{self.session_id}-{m['seq']}"))
        return out

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        checked: list[tuple[str, str, str]] = []
        for message in messages:
            role = next((r for cls, r in _ROLE.items() if isinstance(message, cls)), None)
            if role is None:
                raise InvalidArgument(
                    0,
                    "invalid_argument",
                    f"chat-memory stores human, AI and system messages, not {type(message).__name__}",
                    {"field": "role"},
                )
            mid = _message_id(message.id) if message.id is not None else uuid.uuid4().hex
            check_message(role, message.content, mid, self.client.calls.max_content_bytes)
            checked.append((role, str(message.content), mid))
        for message, (_, _, mid) in zip(messages, checked, strict=True):
            if message.id is None:
                message.id = mid  # kept on the message: adding it again stores it once
        for role, content, mid in checked:
            self.client.append_message(self.session_id, role, content, client_message_id=mid, user_id=self.user_id)

    def clear(self) -> None:
        """Erase the session (``delete_session``): its messages, summary and memory. The
        product deletes no single message and never reuses a session id, so the history
        cannot be emptied and kept: reading or adding to it afterwards raises ``NotFound``."""
        self.client.delete_session(self.session_id, user_id=self.user_id)


def _message_id(raw: Any) -> str:
    """A LangChain message id as a client_message_id (``[A-Za-z0-9_.:-]{1,128}``): as it is
    when it fits, else a digest of it (the same id gives the same one; two ids never share
    one, as replacing or cutting characters would: the second message would be taken for a
    retry of the first and dropped)."""
    text = str(raw)
    if CLIENT_MESSAGE_ID_RE.fullmatch(text):
        return text
    return "lc-" + hashlib.sha256(text.encode()).hexdigest()
