"""Rolling summaries. Pluggable: a deterministic extractive summarizer by default (no
network, no model), Gemini through google-genai when SUMMARIZER=gemini, which falls back
to the extractive one on any failure or timeout. A failing summary never fails an append.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, Protocol

from shared.settings import Settings, get_settings
from shared.store.base import StoredMessage

log = logging.getLogger("chat_memory.summarizer")

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_LABEL = {"user": "User", "assistant": "Assistant", "system": "System"}


class Summarizer(Protocol):
    name: str

    def summarize(self, previous: str | None, messages: Sequence[StoredMessage]) -> str: ...


def _first_sentence(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    first = _SENTENCE.split(text, maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


class ExtractiveSummarizer:
    """One line per message (its first sentence), appended to the previous summary;
    when over the size limit the oldest lines go first. Same input, same output."""

    name = "extractive"

    def __init__(self, max_chars: int = 1200) -> None:
        self.max_chars = max_chars

    def summarize(self, previous: str | None, messages: Sequence[StoredMessage]) -> str:
        lines = [ln for ln in (previous or "").splitlines() if ln.strip()]
        for m in messages:
            lines.append(f"- {_LABEL.get(m.role, m.role)}: {_first_sentence(m.content)}")
        while len(lines) > 1 and len("\n".join(lines)) > self.max_chars:
            lines.pop(0)
        text = "\n".join(lines)
        return text[: self.max_chars]


class GeminiSummarizer:
    """Gemini via the google-genai SDK, with a timeout, falling back to extractive."""

    name = "gemini"

    def __init__(self, settings: Settings, fallback: ExtractiveSummarizer) -> None:
        self.settings = settings
        self.fallback = fallback
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            from shared.genai import new_client

            self._client = new_client(self.settings)
        return self._client

    def summarize(self, previous: str | None, messages: Sequence[StoredMessage]) -> str:
        prompt = (
            "Update the running summary of a support chat. Keep facts, user goals and open "
            f"questions; at most {self.settings.summary_max_chars} characters.\n\n"
            f"Current summary:\n{previous or '(none)'}\n\nNew messages:\n"
            + "\n".join(f"{_LABEL.get(m.role, m.role)}: {m.content}" for m in messages)
        )
        try:
            resp = self._get_client().models.generate_content(model=self.settings.gemini_model, contents=prompt)
            text = (resp.text or "").strip()
            if not text:
                raise ValueError("empty summary")
            return text[: self.settings.summary_max_chars]
        except Exception as exc:  # noqa: BLE001 - any SDK/network failure falls back
            log.warning("gemini summarizer failed; using extractive", extra={"error": type(exc).__name__})
            return self.fallback.summarize(previous, messages)


def build_summarizer(settings: Settings | None = None) -> Summarizer:
    s = settings or get_settings()
    extractive = ExtractiveSummarizer(s.summary_max_chars)
    if s.summarizer == "gemini":
        return GeminiSummarizer(s, extractive)
    return extractive
