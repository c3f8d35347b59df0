"""A session's memory (its digest) and the ranking of memories: pure logic, no I/O.

The digest is built once, from the ended session's document and its analytics entries
(every question/answer pair of the session), so its search text is drawn from the whole
session, not from the rolling summary's tail. Offline it is extractive: the user's
questions and the answers' first sentences, oldest first, within bounds.

Ranking is a ``Ranker``: BM25 (bm25s, offline); with EMBEDDINGS set, ``memories.Memories``
fuses it with a vector search (``embeddings``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.settings import Settings

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOPWORDS = "en"
QUERY_USER_MESSAGES = 3  # the recall's query: the conversation's latest user messages


def _first_sentence(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    first = _SENTENCE.split(text, maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _bounded(text: str, max_bytes: int) -> str:
    """``text`` cut to ``max_bytes`` of UTF-8 at a character boundary."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", "ignore")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """No lone surrogate reaches a memory: Firestore and Redis would refuse it."""
    return _SURROGATE.sub("\ufffd", text)


def turns_of(session: dict[str, Any], entries: list[dict[str, Any]]) -> list[tuple[float, str, str]]:
    """(seq, role, text) of every turn the session's record holds, in order: each answer
    with its question (analytics), and the final window's messages (a question no answer
    followed is only there)."""
    turns: dict[tuple[str, str], float] = {}
    for e in entries:
        seq = float(e.get("seq") or 0)
        if isinstance(e.get("query"), str) and e["query"].strip():
            turns.setdefault(("user", e["query"]), seq - 1)
        if isinstance(e.get("response"), str) and e["response"].strip():
            turns.setdefault(("assistant", e["response"]), seq)
    for m in session.get("final_messages") or []:
        if m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str) and m["content"].strip():
            turns.setdefault((m["role"], m["content"]), float(m.get("seq") or 0))
    return sorted(((seq, role, text) for (role, text), seq in turns.items()), key=lambda t: t[0])


def build_digest(
    sid: str, session: dict[str, Any], entries: list[dict[str, Any]], settings: Settings
) -> dict[str, Any]:
    """The memory document of an ended session (``users/{uid}/memories/{sid}``)."""
    turns = [(seq, role, _clean(text)) for seq, role, text in turns_of(session, entries)]
    # search text: the user's words first (what a later question will echo), then the answers'
    search, size, roles = [], 0, set()
    for want in ("user", "assistant"):
        for _, role, text in turns:
            if role != want or size >= settings.memory_search_max_bytes:
                continue
            piece = _bounded(" ".join(text.split()), settings.memory_search_max_bytes - size)
            search.append(piece)
            size += _utf8_len(piece) + 1
            roles.add(role)
    # the model's text: the user's questions and the first answer sentences, oldest first
    lines, room = [], settings.memory_text_max_chars
    for _, role, text in turns:
        line = f"{'User' if role == 'user' else 'Assistant'}: {_first_sentence(text)}"
        if len(line) + 1 > room:
            break
        lines.append(line)
        room -= len(line) + 1
    summary = session.get("summary") or {}
    if not lines and summary.get("text"):
        lines = [_clean(str(summary["text"]))[: settings.memory_text_max_chars]]
    ended_at = float(session.get("ended_at") or 0)
    seqs = [int(t[0]) for t in turns if t[0] > 0]
    return {
        "session_id": sid,
        "text": "\n".join(lines)[: settings.memory_text_max_chars],
        "search": " ".join(search)[: settings.memory_search_max_bytes],
        "seq_from": min(seqs) if seqs else 0,
        "seq_to": int(session.get("message_count") or (max(seqs) if seqs else 0)),
        "summary_version": int(summary.get("message_count") or 0),
        "roles": sorted(roles),
        "ended_at": ended_at,
        "created_at": datetime.now(UTC).timestamp(),
        "expire_at": datetime.fromtimestamp(ended_at, UTC) + timedelta(days=settings.memory_retention_days),
    }


def recall_query(recent: Sequence[dict[str, Any]]) -> str:
    """The recall's query: the conversation's latest user messages."""
    users = [str(m.get("content", "")) for m in recent if m.get("role") == "user"]
    return "\n".join(users[-QUERY_USER_MESSAGES:])


class Ranker(Protocol):
    """Ranks texts against a query: (index, score) of the best ``k`` with a score above 0,
    best first."""

    name: str

    def rank(self, query: str, texts: Sequence[str], k: int) -> list[tuple[int, float]]: ...


class BM25Ranker:
    """BM25 over the texts, built per call (a user's few hundred memories index in
    milliseconds), English stop words and stemming, as the KB's retriever."""

    name = "bm25"

    def __init__(self) -> None:
        self._local = threading.local()  # PyStemmer is not thread-safe: one per thread

    def _stem(self, words: list[str]) -> list[str]:
        import Stemmer

        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            stemmer = self._local.stemmer = Stemmer.Stemmer("english")
        return list(stemmer.stemWords(words))

    def _tokens(self, texts: Sequence[str]) -> list[list[str]]:
        import bm25s

        got = bm25s.tokenize(
            list(texts), stopwords=_STOPWORDS, stemmer=self._stem, return_ids=False, show_progress=False
        )
        return [list(t) for t in got]

    def rank(self, query: str, texts: Sequence[str], k: int) -> list[tuple[int, float]]:
        if not texts or k <= 0:
            return []
        import bm25s

        q = self._tokens([query])[0]
        corpus = self._tokens(texts)
        if not q or not any(corpus):
            return []
        retriever = bm25s.BM25()
        retriever.index(corpus, show_progress=False)
        docs, scores = retriever.retrieve([q], k=min(k, len(texts)), show_progress=False, return_as="tuple")
        out = [(int(i), float(s)) for i, s in zip(docs[0], scores[0], strict=True) if float(s) > 0]
        return sorted(out, key=lambda t: (-t[1], t[0]))
