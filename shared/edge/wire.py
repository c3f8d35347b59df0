"""The answers on the wire: one model per success body of ``openapi.yaml`` (its component
schema of the same name). Handlers build these and nothing else, and a unit test checks each
against the spec's fields, so code, spec and docs/http-api.md cannot drift apart silently.

The hot answers (get_context, append_message, get_history's messages) are built by
``shared/bodies.py`` from the core's already validated models, without this module (whose
twenty models cost a cold start several ms to define); each model's ``validated`` is the
long way, and tests/unit/test_wire_contract.py holds the two equal."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.core import models
from shared.core.models import Context, Message, Summary
from shared.edge import bodies
from shared.store.base import LayerName


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WireMessage(_Wire):
    seq: int
    role: str
    content: str
    timestamp: float
    metadata: dict[str, Any] | None = None  # left out when absent
    item: dict[str, Any] | None = None  # a framework's whole item, left out when absent

    @classmethod
    def of(cls, m: Message) -> dict[str, Any]:
        return bodies.message(m)

    @classmethod
    def validated(cls, m: Message) -> dict[str, Any]:
        """``of`` the long way: through this model (the reference the test compares with)."""
        out = cls(
            seq=m.seq, role=m.role, content=m.content, timestamp=m.timestamp, metadata=m.metadata, item=m.item
        ).model_dump()
        for absent in ("metadata", "item"):
            if out[absent] is None:
                del out[absent]
        return out


class SessionCreated(_Wire):
    session_id: str
    user_id: str
    created_at: float
    storage: LayerName


class AppendResult(_Wire):
    session_id: str
    message_count: int
    summary_updated: bool
    storage: LayerName
    durable: bool  # false: only this instance's memory holds it (both stores down)

    @classmethod
    def validated(cls, res: models.AppendResult) -> dict[str, Any]:
        return cls(
            session_id=res.session_id,
            message_count=res.message_count,
            summary_updated=res.summary_updated,
            storage=res.storage,
            durable=res.durable,
        ).model_dump()


class RecalledMemory(_Wire):
    """A past session recalled into the context (get_context, chat)."""

    session_id: str
    text: str
    score: float
    ended_at: float


class MemoryItem(_Wire):
    """One of the caller's memories (list_memories, search_memories: with its score)."""

    session_id: str
    text: str
    score: float | None = None  # search_memories only; left out otherwise
    ended_at: float
    seq_from: int
    seq_to: int


class MemoryPage(_Wire):
    items: list[MemoryItem]
    next_cursor: str | None = None  # left out on the last page


class ListedSession(_Wire):
    """One of the caller's sessions (list_sessions): what it is, never what it holds."""

    session_id: str
    status: str
    created_at: float
    last_active_at: float | None = None
    ended_at: float | None = None
    message_count: int | None = None
    memory: bool


class SessionList(_Wire):
    items: list[ListedSession]
    next_cursor: str | None = None  # left out on the last page


class MemoryDeleted(_Wire):
    session_id: str
    deleted: bool


class StateAnswer(_Wire):
    scope: Literal["user", "app"]
    app: str
    state: dict[str, Any]
    updated_at: float | None  # null: never written


class ContextResult(_Wire):
    session_id: str
    messages: list[dict[str, Any]]
    summary: Summary | None
    formatted_context: str
    storage: LayerName
    durable: bool  # false: served from this instance's memory only
    memories: list[RecalledMemory]

    @classmethod
    def validated(cls, ctx: Context) -> dict[str, Any]:
        return cls(
            session_id=ctx.session_id,
            messages=[WireMessage.validated(m) for m in ctx.messages],
            summary=ctx.summary,
            formatted_context=ctx.formatted_context,
            storage=ctx.storage,
            durable=ctx.durable,
            memories=[RecalledMemory.model_validate(m.model_dump()) for m in ctx.memories],
        ).model_dump()


class HistoryResult(_Wire):
    session_id: str
    messages: list[dict[str, Any]]
    storage: LayerName
    durable: bool


class AnswerMetadata(_Wire):
    confidence: float
    sources: list[str]
    collection: str | None


class ChatAnswer(_Wire):
    content: str
    seq: int
    metadata: AnswerMetadata


class ChatResult(_Wire):
    session_id: str
    answer: ChatAnswer
    user_seq: int
    message_count: int
    summary_updated: bool
    storage: LayerName
    durable: bool
    memories: list[RecalledMemory]


class EndResult(_Wire):
    session_id: str
    status: str
    summary: Summary | None
    message_count: int
    queries_recorded: int


class UserStats(_Wire):
    user_id: str
    total_sessions: int
    total_messages: int
    total_queries: int
    last_active_at: float | None
    recent_sessions: list[str]


class ReportDay(_Wire):
    date: str
    sessions: int
    messages: int
    queries: int
    low_confidence: int
    avg_confidence: float | None


class KbEntryUses(_Wire):
    entry_id: str
    uses: int


class AdminReport(_Wire):
    days: list[ReportDay]
    confidence_histogram: list[int]
    top_kb_entries: list[KbEntryUses]
    unused_kb_entries: list[str]
    end_reasons: dict[str, int]
    collections: dict[str, int]


class LowConfidenceItem(_Wire):
    session_id: str
    seq: int
    query: str | None
    response: str
    confidence: float
    sources: list[str]
    collection: str | None
    timestamp: float


class LowConfidencePage(_Wire):
    items: list[LowConfidenceItem]
    next_cursor: str | None


class AdminSession(_Wire):
    session: dict[str, Any]
    analytics: list[dict[str, Any]]
    final_messages: list[dict[str, Any]]


class ExportSession(_Wire):
    """A session, or one part of a session split across pages (``continues``: the rest
    begins the next page)."""

    session_id: str
    status: Literal["active", "ended"]
    created_at: float | None
    last_active_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    user_info: dict[str, Any] = {}
    summary: dict[str, Any] | None = None
    messages: list[dict[str, Any]]
    analytics: list[dict[str, Any]]
    continues: bool


class ExportPage(_Wire):
    user_id: str
    user: dict[str, Any] | None = None  # the first page only
    memories: list[dict[str, Any]] | None = None  # the first page only: memories with their lineage
    state: dict[str, dict[str, Any]] | None = None  # the first page only: each app's state of the user
    sessions: list[ExportSession]
    next_cursor: str | None


class ErasedCounts(_Wire):
    sessions: int
    messages: int
    analytics_entries: int
    redis_keys: int
    documents: int
    memories: int


class SessionErased(_Wire):
    session_id: str
    erased: ErasedCounts


class ErasureReceipt(_Wire):
    receipt_id: str
    complete: bool
    erased: ErasedCounts


# openapi.yaml component schema -> the model answering with it
SCHEMAS: dict[str, type[_Wire]] = {
    "StateAnswer": StateAnswer,
    "SessionList": SessionList,
    "ListedSession": ListedSession,
    "SessionCreated": SessionCreated,
    "AppendResult": AppendResult,
    "ContextResult": ContextResult,
    "HistoryResult": HistoryResult,
    "EndResult": EndResult,
    "UserStats": UserStats,
    "ChatResult": ChatResult,
    "ChatAnswer": ChatAnswer,
    "AnswerMetadata": AnswerMetadata,
    "AdminReport": AdminReport,
    "ReportDay": ReportDay,
    "KbEntryUses": KbEntryUses,
    "LowConfidencePage": LowConfidencePage,
    "LowConfidenceItem": LowConfidenceItem,
    "AdminSession": AdminSession,
    "ExportPage": ExportPage,
    "ExportSession": ExportSession,
    "ErasedCounts": ErasedCounts,
    "SessionErased": SessionErased,
    "ErasureReceipt": ErasureReceipt,
    "Message": WireMessage,
    "RecalledMemory": RecalledMemory,
    "MemoryItem": MemoryItem,
    "MemoryPage": MemoryPage,
    "MemoryDeleted": MemoryDeleted,
}
