"""``ChatMemoryMemoryService``: ADK's ``BaseMemoryService`` on the product's memories.

The product makes one memory (a digest, searched by BM25) of a session when the session ends,
and only then: ``add_session_to_memory(session)`` ends the product session behind the ADK
session (``end_session``, reason ``completed``; ending an ended session answers the first end,
so calling it again is harmless). The session is then read-only: ``append_event`` to it is
refused (``Conflict``, the product's ``failed_precondition``), ``get_session`` still reads
it. The digest is written by the product's session-end trigger, moments after the end.
``search_memory`` ranks the user's memories (``search_memories``) and keeps those of this
app's sessions, each a ``MemoryEntry`` whose ``custom_metadata`` names the ADK session.
A session created with ``memory=False`` on the product leaves none (not settable from ADK).
"""

from __future__ import annotations

from datetime import datetime, timezone

from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.session import Session
from google.genai import types
from typing_extensions import override

from chat_memory_client.adk._store import Store, sessions_in
from chat_memory_client.client import AsyncChatMemoryClient, ChatMemoryClient

SEARCH_LIMIT = 10


class ChatMemoryMemoryService(BaseMemoryService):
    """``ChatMemoryMemoryService(client=..., namespace=...)``, the same client and namespace
    as the ``ChatMemorySessionService`` whose sessions it remembers."""

    def __init__(
        self, *, client: AsyncChatMemoryClient | ChatMemoryClient, namespace: str = "", limit: int = SEARCH_LIMIT
    ) -> None:
        self._store = Store(client, namespace)
        self.limit = limit

    @override
    async def add_session_to_memory(self, session: Session) -> None:
        st = self._store
        sid = await st.resolve(session.app_name, session.user_id, session.id)
        if sid is None:
            raise ValueError(f"session {session.id} of {session.user_id} in {session.app_name} does not exist")
        await st.cm.end_session(sid, reason="completed", user_id=st.user(session.user_id))

    @override
    async def search_memory(self, *, app_name: str, user_id: str, query: str) -> SearchMemoryResponse:
        st = self._store
        if not query.strip():
            return SearchMemoryResponse()
        names = {sid: name for name, sid in sessions_in(await st.user_state(app_name, user_id)).items()}
        found = await st.cm.search_memories(query, limit=self.limit, user_id=st.user(user_id))
        memories = [
            MemoryEntry(
                id=m["session_id"],
                content=types.Content(role="user", parts=[types.Part(text=m["text"])]),
                timestamp=datetime.fromtimestamp(m["ended_at"], tz=timezone.utc).isoformat(),  # noqa: UP017 - 3.10
                custom_metadata={
                    "session_id": names[m["session_id"]],
                    "chat_memory_session_id": m["session_id"],
                    "score": m.get("score"),
                },
            )
            for m in found.get("items") or []
            if m["session_id"] in names
        ]
        return SearchMemoryResponse(memories=memories)
