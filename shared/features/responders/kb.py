"""The `kb` responder: BM25 retrieval over a FAQ file, answering with the best entry.

Offline and deterministic. bm25s (and numpy, PyStemmer) are imported only when the first
question builds the index, once per process and KB file; importing this module is cheap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from shared.core.models import Context, Message
from shared.features.responders.base import Answer
from shared.features.responders.knowledge import KbEntry, KnowledgeBase, load_knowledge_base
from shared.settings import Settings

log = logging.getLogger("chat_memory.responders.kb")

# Earlier user messages make the query of a follow-up ("and how long does that take?") but
# weigh half as much as the message itself, and add to an entry at most CONTEXT_REACH of the
# best score of the message's own words: they decide between entries the message leaves
# nearly tied, steering a vague question to the current topic, but cannot overturn a clear
# lead, so a question that names its own topic ("how long does shipping take?" after two
# questions on refunds) keeps it however many earlier words match another entry. A message
# with no word of the KB gets no help from the context (its confidence was 0 anyway). On the
# sample, 0.15 to 0.25 keep the tests and the held-out figures alike; from 0.3 the two refund
# questions outvote "shipping" again.
CONTEXT_WEIGHT = 0.5
CONTEXT_REACH = 0.2
CONTEXT_USER_MESSAGES = 2
# bm25s's longer English list: question words ("how", "what", "can", "my") carry no topic.
_STOPWORDS = "en_plus"


@dataclass(frozen=True, slots=True)
class Hit:
    entry: KbEntry
    score: float


@dataclass(frozen=True, slots=True)
class Retrieval:
    hits: tuple[Hit, ...]  # entries with a positive score, best first
    confidence: float

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


def calibrate(own: float, ideal: float, top: float, second: float) -> float:
    """Confidence in [0, 1] of the best entry.

    coverage = own / ideal: the best entry's score for the question's own words over the
    question's attainable score (each word scored as the entry that matches it best would;
    a word the KB never uses counts as the KB's typical word). margin = (top - second) / top
    on the ranking's scores (context included): how far the best entry stands out. An entry
    that covers the question but ties with another keeps three quarters of its coverage.
    """
    if own <= 0 or ideal <= 0 or top <= 0:
        return 0.0
    coverage = min(1.0, own / ideal)
    margin = max(0.0, (top - second) / top)
    return round(coverage * (0.75 + 0.25 * margin), 3)


class KbIndex:
    """A KB and its BM25 index. Built by `get_index`, read-only afterwards (thread-safe)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        import bm25s
        import numpy as np
        import Stemmer

        self.kb = kb
        self._bm25s = bm25s
        self._np = np
        self._new_stemmer = lambda: Stemmer.Stemmer("english")
        # A PyStemmer stemmer has internal state and must not be called concurrently:
        # one per thread (the functions framework serves requests on several threads).
        self._local = threading.local()
        # BM25 has no fields, so repetition weighs them: the title and the other phrasings are
        # what customers ask and count twice as much as the answer's words; the collection's
        # name is indexed too, so a question naming the topic ("shipping") leans to its entries.
        corpus = [
            "\n".join([e.title, *e.questions, e.title, *e.questions, e.collection.replace("_", " "), e.answer])
            for e in kb.entries
        ]
        self._retriever = bm25s.BM25()
        self._retriever.index(self._tokenize(corpus), show_progress=False)
        self._term_max = self._best_score_per_term()
        self._typical = float(np.median(list(self._term_max.values()))) if self._term_max else 0.0

    def _stem(self, words: list[str]) -> list[str]:
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            stemmer = self._local.stemmer = self._new_stemmer()
        return list(stemmer.stemWords(words))

    def _tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        tokens = self._bm25s.tokenize(
            list(texts), stopwords=_STOPWORDS, stemmer=self._stem, return_ids=False, show_progress=False
        )
        return [list(t) for t in tokens]

    def _best_score_per_term(self) -> dict[str, float]:
        # bm25s precomputes each term's score in each entry (a CSC matrix, one column per
        # term); the best entry's score for a term is its column's maximum.
        scores = self._retriever.scores
        data, indptr = scores["data"], scores["indptr"]
        best = {}
        for term, column in self._retriever.vocab_dict.items():
            if not term or column + 1 >= len(indptr):
                continue  # bm25s's placeholder for an empty document has no column
            start, end = int(indptr[column]), int(indptr[column + 1])
            if end > start:
                best[term] = float(data[start:end].max())
        return best

    def terms(self, text: str) -> list[str]:
        return sorted(set(self._tokenize([text])[0]))

    def search(self, question_terms: Sequence[str], context_terms: Sequence[str] = ()) -> Retrieval:
        """Rank by the question's words (weight 1) plus the context's (CONTEXT_WEIGHT, at most
        CONTEXT_REACH of the question's best); the confidence measures how well the chosen
        entry covers the question's own words."""
        np = self._np
        own = np.zeros(len(self.kb.entries), dtype=np.float64)
        ideal = 0.0
        for term in sorted(set(question_terms)):
            if term in self._term_max:
                own += self._retriever.get_scores([term]).astype(np.float64)
                ideal += self._term_max[term]
            else:
                ideal += self._typical
        earlier = np.zeros(len(self.kb.entries), dtype=np.float64)
        for term in sorted(set(context_terms) - set(question_terms)):
            if term in self._term_max:
                earlier += self._retriever.get_scores([term]).astype(np.float64)
        reach = CONTEXT_REACH * float(own.max())
        totals = own + np.minimum(CONTEXT_WEIGHT * earlier, reach)
        # Ties keep the file's order, so the same question always gets the same entry.
        order = sorted(range(len(totals)), key=lambda i: (-float(totals[i]), i))
        hits = tuple(Hit(self.kb.entries[i], float(totals[i])) for i in order if totals[i] > 0)
        if not hits:
            return Retrieval(hits=(), confidence=0.0)
        second = hits[1].score if len(hits) > 1 else 0.0
        best_own = float(own[order[0]])
        return Retrieval(hits=hits, confidence=calibrate(best_own, ideal, hits[0].score, second))


_indexes: dict[str, KbIndex] = {}
_indexes_lock = threading.Lock()


def get_index(path: str | None) -> KbIndex:
    """The index of a KB file, built on first use and kept for the process (per path)."""
    key = path or ""
    index = _indexes.get(key)
    if index is None:
        with _indexes_lock:
            index = _indexes.get(key)
            if index is None:
                index = KbIndex(load_knowledge_base(path))
                _indexes[key] = index
                log.info("knowledge base indexed", extra={"entries": len(index.kb.entries)})
    return index


def reset_indexes() -> None:
    """For tests: forget the built indexes."""
    with _indexes_lock:
        _indexes.clear()


def previous_user_messages(question: str, messages: Sequence[Message], limit: int = CONTEXT_USER_MESSAGES) -> list[str]:
    """The last `limit` user messages before this question, most recent first. The question
    itself may already be the context's last message (appended before the turn): skipped."""
    users = [m.content for m in messages if m.role == "user" and m.content]
    if users and users[-1].strip() == question.strip():
        users.pop()
    return users[::-1][:limit]


class KbResponder:
    name = "kb"

    def __init__(self, kb_path: str | None, min_confidence: float) -> None:
        self.kb_path = kb_path
        self.min_confidence = min_confidence

    def index(self) -> KbIndex:
        return get_index(self.kb_path)

    def retrieve(self, question: str, context: Context) -> Retrieval:
        index = self.index()
        earlier = [t for text in previous_user_messages(question, context.messages) for t in index.terms(text)]
        return index.search(index.terms(question), earlier)

    def answer(self, question: str, context: Context) -> Answer:
        return self.answer_from(self.retrieve(question, context))

    def answer_from(self, found: Retrieval) -> Answer:
        """The best entry's answer, or the honest "I don't know" below the threshold."""
        best = found.best
        if best is None or found.confidence < self.min_confidence:
            return self.unknown(found.confidence)
        return Answer(
            content=best.entry.answer,
            confidence=found.confidence,
            sources=[best.entry.id],
            collection=best.entry.collection,
        )

    def unknown(self, confidence: float) -> Answer:
        """The honest answer when no entry fits: the KB's text on reaching a person."""
        return Answer(content=self.index().kb.unknown_answer, confidence=confidence, sources=[], collection=None)


def build(settings: Settings) -> KbResponder:
    return KbResponder(settings.kb_path, settings.kb_min_confidence)
