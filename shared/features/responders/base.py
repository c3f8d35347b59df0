"""The responder interface: given the user's message and the session's context, an answer
with the metadata the product stores beside it (confidence, KB sources, collection)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from shared.core.models import Context


@dataclass(frozen=True, slots=True)
class Answer:
    content: str
    confidence: float  # in [0, 1]
    sources: list[str]  # KB entry ids the answer used (empty when none)
    collection: str | None  # the collection of the best entry (None when none)

    def metadata(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "sources": list(self.sources), "collection": self.collection}


class Responder(Protocol):
    name: str

    def answer(self, question: str, context: Context) -> Answer: ...
