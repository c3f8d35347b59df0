"""When a session's summary is written: the rolling one every ``SUMMARY_INTERVAL`` messages
(Redis claims it atomically with the append that makes it due) and the final one at the end.
How a summary is written is the summarizer's (``shared.core.summarizer``).
"""

from __future__ import annotations

import logging
from typing import Any

from shared.core.summarizer import Summarizer
from shared.store.base import StoredMessage
from shared.store.layers import Layers

log = logging.getLogger("chat_memory.session")


class Summaries:
    def __init__(self, summarizer: Summarizer, layers: Layers) -> None:
        self.summarizer = summarizer
        self.layers = layers

    def roll(
        self, sid: str, seq: int, previous: dict[str, Any] | None, unsummarized: list[StoredMessage], now: float
    ) -> bool:
        """Summarise the messages not yet covered, up to ``seq``, into Redis. Never raises:
        a failing summary must not fail the append (the next claim covers this window too)."""
        try:
            window = [m for m in unsummarized if m.seq <= seq and m.is_turn]  # items alone: no text
            if previous and int(previous.get("message_count", 0)) >= seq:
                return False
            text = self.summarizer.summarize(previous.get("text") if previous else None, window)
            stored = self.layers.redis.store_summary(sid, {"text": text, "message_count": seq, "updated_at": now})
            log.info("rolling summary", extra={"session_id": sid, "covers": seq, "stored": stored})
            return stored
        except Exception as exc:  # noqa: BLE001 - see docstring
            log.warning("rolling summary failed", extra={"session_id": sid, "error": type(exc).__name__})
            return False

    def final(
        self, previous: dict[str, Any] | None, unsummarized: list[StoredMessage], message_count: int, now: float
    ) -> dict[str, Any] | None:
        """The summary the session ends with: the previous one extended by what it does not
        cover. The end never fails on a summary: the previous text stands then."""
        turns = [m for m in unsummarized if m.is_turn]  # an item alone has no text to summarize
        if not turns:
            return previous
        try:
            text = self.summarizer.summarize(previous.get("text") if previous else None, turns)
        except Exception:  # noqa: BLE001 - see docstring
            text = (previous or {}).get("text") or ""
        return {"text": text, "message_count": message_count, "updated_at": now}
