"""A typed Python client for chat-memory: ``ChatMemoryClient`` (sync) and
``AsyncChatMemoryClient``, typed errors, token providers (``chat_memory_client.auth``)."""

from chat_memory_client.client import AsyncChatMemoryClient, ChatMemoryClient
from chat_memory_client.errors import (
    ChatMemoryError,
    Conflict,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    TransportError,
    Unauthenticated,
    Unavailable,
)

__version__ = "0.1.0"
__all__ = [
    "AsyncChatMemoryClient",
    "ChatMemoryClient",
    "ChatMemoryError",
    "Conflict",
    "InvalidArgument",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "TransportError",
    "Unauthenticated",
    "Unavailable",
]
