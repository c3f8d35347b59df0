"""The `gemini` responder: Gemini (google-genai) writes the answer from the session's context
and the entries the `kb` responder retrieved; on any failure or timeout the `kb` answer.

The metadata comes from the retrieval, not from the model: confidence is the retrieval's,
sources are the entries put in the prompt, collection the best entry's. A question no entry
covers (below KB_MIN_CONFIDENCE) gets the `kb` "I don't know" without calling the model,
which would otherwise answer from its own knowledge of some other shop.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from shared.core.models import Context
from shared.features.responders.base import Answer
from shared.features.responders.kb import KbResponder, Retrieval
from shared.features.responders.kb import build as build_kb
from shared.features.responders.knowledge import KbEntry
from shared.settings import Settings

log = logging.getLogger("chat_memory.responders.gemini")

# Entries in the prompt: the best and those scoring at least half as much, at most three.
# Beyond that the prompt grows and the sources counted in the KB-usage figures get noisy.
PROMPT_ENTRIES = 3
PROMPT_ENTRY_MIN_SHARE = 0.5


def prompt_entries(found: Retrieval) -> list[KbEntry]:
    if not found.hits:
        return []
    floor = found.hits[0].score * PROMPT_ENTRY_MIN_SHARE
    return [h.entry for h in found.hits[:PROMPT_ENTRIES] if h.score >= floor]


def build_prompt(question: str, context: Context, entries: list[KbEntry], unknown_answer: str) -> str:
    kb_text = "\n\n".join(f"[{e.id}] {e.title}\n{e.answer}" for e in entries)
    return (
        "You are the support assistant of an online shop. Answer the customer's last message "
        "using only the knowledge base entries below; be brief and friendly. If they do not "
        f"answer it, reply exactly: {unknown_answer}\n\n"
        f"Conversation so far:\n{context.formatted_context or '(none)'}\n\n"
        f"Knowledge base entries:\n{kb_text}\n\n"
        f"Customer's message:\n{question}"
    )


class GeminiResponder:
    name = "gemini"

    def __init__(self, settings: Settings, kb: KbResponder) -> None:
        self.settings = settings
        self.kb = kb
        self._client: Any = None
        self._lock = threading.Lock()

    def _get_client(self) -> Any:
        # Built on first use and kept; a failed build is not kept, the next turn tries again.
        if self._client is None:
            from google import genai
            from google.genai import types

            with self._lock:
                if self._client is None:
                    self._client = genai.Client(
                        http_options=types.HttpOptions(timeout=int(self.settings.gemini_timeout_s * 1000))
                    )
        return self._client

    def answer(self, question: str, context: Context) -> Answer:
        found = self.kb.retrieve(question, context)
        best = found.best
        if best is None or found.confidence < self.kb.min_confidence:
            return self.kb.unknown(found.confidence)
        entries = prompt_entries(found)
        prompt = build_prompt(question, context, entries, self.kb.index().kb.unknown_answer)
        try:
            resp = self._get_client().models.generate_content(model=self.settings.gemini_model, contents=prompt)
            text = (resp.text or "").strip()
            if not text:
                raise ValueError("empty answer")
        except Exception as exc:  # noqa: BLE001 - any SDK, network or credential failure falls back
            log.warning("gemini responder failed; answering from the KB", extra={"error": type(exc).__name__})
            return self.kb.answer_from(found)
        return Answer(
            content=text,
            confidence=found.confidence,
            sources=[e.id for e in entries],
            collection=best.entry.collection,
        )


def build(settings: Settings) -> GeminiResponder:
    return GeminiResponder(settings, build_kb(settings))
