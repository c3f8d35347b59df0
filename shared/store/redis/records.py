"""What the Redis layer's session operations answer (beyond the store-wide records)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.store.base import QueryRecord, ReadStatus, SnapshotStatus, StoredMessage


@dataclass(slots=True)
class ImportOutcome:
    added: int  # -1: Redis does not know the session; -2: it is ending or ended
    due_seq: int = 0  # the last rolling-summary claim the merge made, if any
    previous_summary: dict[str, Any] | None = None
    unsummarized: list[StoredMessage] | None = None


@dataclass(slots=True)
class ReadOutcome:
    status: ReadStatus
    session_status: str = ""
    seq: int = 0
    messages: list[StoredMessage] | None = None
    summary: dict[str, Any] | None = None
    end_result: dict[str, Any] | None = None
    doc_missing: bool = False
    memories: list[dict[str, Any]] | None = None  # recalled when the last user message was taken


@dataclass(slots=True)
class EndSnapshot:
    status: SnapshotStatus
    token: str = ""  # this end attempt's: only it may abort
    meta: dict[str, str] | None = None
    unsummarized: list[StoredMessage] | None = None
    queries: list[QueryRecord] | None = None
    summary: dict[str, Any] | None = None
    messages: list[StoredMessage] | None = None
    end_result: dict[str, Any] | None = None
