"""Google ADK on chat-memory (``pip install "./clients/python[adk]"``): a session service
(``ChatMemorySessionService``, ADK's ``BaseSessionService``) and a memory service
(``ChatMemoryMemoryService``, ADK's ``BaseMemoryService``). docs/adk.md has the mapping."""

from chat_memory_client.adk.memory import ChatMemoryMemoryService
from chat_memory_client.adk.sessions import ChatMemorySessionService

__all__ = ["ChatMemoryMemoryService", "ChatMemorySessionService"]
