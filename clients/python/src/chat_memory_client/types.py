"""The answers of the API as TypedDicts (``shared/edge/wire.py`` on the server, openapi.yaml):
what each method returns is the function's JSON, typed. Keys the server leaves out when they
have no value are the ``total=False`` parts."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Storage = Literal["redis", "firestore", "memory"]
Role = Literal["user", "assistant", "system"]


class _MessageBase(TypedDict):
    seq: int
    role: Role
    content: str
    timestamp: float


class Message(_MessageBase, total=False):
    metadata: dict[str, Any]
    item: dict[str, Any]  # a framework's whole item (an ADK event, an Agents item), as it was given


class Summary(TypedDict):
    text: str
    message_count: int  # the messages it covers
    updated_at: float


class RecalledMemory(TypedDict):
    session_id: str
    text: str
    score: float
    ended_at: float


class SessionCreated(TypedDict):
    session_id: str
    user_id: str
    created_at: float
    storage: Storage


class Appended(TypedDict):
    session_id: str
    message_count: int
    summary_updated: bool
    storage: Storage
    durable: bool  # false: only one instance's memory holds it (both stores were down)


class Context(TypedDict):
    session_id: str
    messages: list[Message]
    summary: Summary | None
    formatted_context: str
    storage: Storage
    durable: bool
    memories: list[RecalledMemory]


class History(TypedDict):
    session_id: str
    messages: list[Message]
    storage: Storage
    durable: bool


class EndResult(TypedDict):
    session_id: str
    status: str
    summary: Summary | None
    message_count: int
    queries_recorded: int


class AnswerMetadata(TypedDict):
    confidence: float
    sources: list[str]
    collection: str | None


class ChatAnswer(TypedDict):
    content: str
    seq: int
    metadata: AnswerMetadata


class ChatTurn(TypedDict):
    session_id: str
    answer: ChatAnswer
    user_seq: int
    message_count: int
    summary_updated: bool
    storage: Storage
    durable: bool
    memories: list[RecalledMemory]


class _ListedSessionBase(TypedDict):
    session_id: str
    status: str
    created_at: float
    memory: bool


class ListedSession(_ListedSessionBase, total=False):
    last_active_at: float
    ended_at: float
    message_count: int


class _SessionPageBase(TypedDict):
    items: list[ListedSession]


class SessionPage(_SessionPageBase, total=False):
    next_cursor: str  # left out on the last page


class _MemoryItemBase(TypedDict):
    session_id: str
    text: str
    ended_at: float
    seq_from: int
    seq_to: int


class MemoryItem(_MemoryItemBase, total=False):
    score: float  # search_memories only


class _MemoryPageBase(TypedDict):
    items: list[MemoryItem]


class MemoryPage(_MemoryPageBase, total=False):
    next_cursor: str  # left out on the last page


class MemoryDeleted(TypedDict):
    session_id: str
    deleted: bool


class StateAnswer(TypedDict):
    scope: Literal["user", "app"]
    app: str
    state: dict[str, Any]  # every key with its JSON value
    updated_at: float | None  # None: never written


class ErasedCounts(TypedDict):
    sessions: int
    messages: int
    analytics_entries: int
    redis_keys: int
    documents: int
    memories: int


class SessionErased(TypedDict):
    session_id: str
    erased: ErasedCounts


class ErasureReceipt(TypedDict):
    receipt_id: str
    complete: bool
    erased: ErasedCounts


class UserStats(TypedDict):
    user_id: str
    total_sessions: int
    total_messages: int
    total_queries: int
    last_active_at: float | None
    recent_sessions: list[str]


class _ExportPageBase(TypedDict):
    user_id: str
    sessions: list[dict[str, Any]]
    next_cursor: str | None


class ExportPage(_ExportPageBase, total=False):
    user: dict[str, Any] | None  # the first page only
    memories: list[dict[str, Any]] | None  # the first page only
    state: dict[str, dict[str, Any]] | None  # the first page only: each app's state of the user


Health = dict[str, Any]
