"""Embeddings of memories (EMBEDDINGS=local|vertex): a vector per digest, searched with
Firestore's ``find_nearest`` and fused with BM25 (reciprocal rank fusion).

- ``vertex``: ``gemini-embedding-001`` through google-genai, at EMBEDDING_DIMENSIONS
  dimensions (the vector index in firestore.indexes.json has the same), with the retrieval
  task types (documents when a digest is written, a query when a conversation recalls).
  Vectors below the model's full 3072 dimensions are not unit length: they are normalized
  here, so cosine and dot product agree.
- ``local``: a deterministic embedder with no model and no network: signed feature hashing
  of the text's stemmed words and character trigrams (blake2b, so every process and every
  run agree), L2-normalized. It is lexical, not semantic: it exists so the vector path
  (the digest's vector, the index, ``find_nearest``, the fusion) runs and is tested offline,
  on the emulator, with no key.

An embedder failure never fails the digest or the turn: the digest is written without a
vector, the recall ranks by BM25 alone, and a log line says so.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from shared.settings import Settings

log = logging.getLogger("chat_memory.memory")
EMBEDDING_DIMENSIONS = 768  # the vector index's dimension (firestore.indexes.json)
VERTEX_MODEL = "gemini-embedding-001"
RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al. 2009; what most hybrid search uses)
Task = Literal["document", "query"]
_WORD = re.compile(r"\w+", re.UNICODE)


class Embedder(Protocol):
    """Texts to unit vectors of EMBEDDING_DIMENSIONS floats; ``name`` is stored with each
    vector (``embedding_model``), so vectors of another embedder are never compared."""

    name: str
    max_distance: float  # a nearest memory farther than this (cosine distance) is no match

    def embed(self, texts: Sequence[str], task: Task) -> list[list[float]]: ...


def _unit(v: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm > 0 else list(v)


class LocalEmbedder:
    """Signed feature hashing of stemmed words (weight 1) and character trigrams (0.5), English
    stop words left out (bm25s's longer list), sublinear term frequency, L2-normalized.
    Deterministic across processes."""

    name = "local-hash-v1"
    max_distance = 0.9  # cosine 0.1: hashed features of unrelated texts sit near 0

    def __init__(self, dimensions: int = EMBEDDING_DIMENSIONS) -> None:
        self.dimensions = dimensions

    def _features(self, text: str) -> Counter[str]:
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN_PLUS

        stop = frozenset(STOPWORDS_EN_PLUS)
        words = [w for w in (w.lower() for w in _WORD.findall(text)) if w not in stop]
        stems = Stemmer.Stemmer("english").stemWords(words)
        feats: Counter[str] = Counter("w:" + s for s in stems)
        for w in words:
            padded = f" {w} "
            feats.update("c:" + padded[i : i + 3] for i in range(len(padded) - 2))
        return feats

    def _vector(self, text: str) -> list[float]:
        v = [0.0] * self.dimensions
        for feat, tf in self._features(text).items():
            h = int.from_bytes(hashlib.blake2b(feat.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")
            weight = (1.0 if feat.startswith("w:") else 0.5) * (1.0 + math.log(tf))
            v[h % self.dimensions] += weight if (h >> 63) & 1 else -weight
        return _unit(v)

    def embed(self, texts: Sequence[str], task: Task) -> list[list[float]]:
        return [self._vector(t) for t in texts]


class VertexEmbedder:
    """``gemini-embedding-001`` via google-genai (Vertex AI when GOOGLE_GENAI_USE_VERTEXAI is
    set, as the Gemini responder and summarizer), with the Gemini timeout."""

    name = f"{VERTEX_MODEL}@{EMBEDDING_DIMENSIONS}"
    max_distance = 0.45  # cosine 0.55: a starting point, not measured here (no key offline)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            from shared.genai import new_client

            self._client = new_client(self.settings)
        return self._client

    def embed(self, texts: Sequence[str], task: Task) -> list[list[float]]:
        from google.genai import types

        resp = self._get_client().models.embed_content(
            model=VERTEX_MODEL,
            contents=list(texts),
            config=types.EmbedContentConfig(
                task_type="RETRIEVAL_DOCUMENT" if task == "document" else "RETRIEVAL_QUERY",
                output_dimensionality=EMBEDDING_DIMENSIONS,
            ),
        )
        got = [list(e.values or []) for e in (resp.embeddings or [])]
        if len(got) != len(texts) or any(len(v) != EMBEDDING_DIMENSIONS for v in got):
            raise ValueError("embedding answer of the wrong shape")
        return [_unit(v) for v in got]


def build_embedder(settings: Settings) -> Embedder | None:
    if settings.embeddings == "local":
        return LocalEmbedder()
    if settings.embeddings == "vertex":
        return VertexEmbedder(settings)
    return None


def embed_one(embedder: Embedder, text: str, task: Task) -> list[float] | None:
    """One vector, or None (logged) if the embedder fails: never an error for the caller."""
    try:
        return embedder.embed([text], task)[0]
    except Exception as exc:  # noqa: BLE001 - any SDK, network or shape failure: BM25 alone
        log.warning("embedding failed; BM25 alone", extra={"error": type(exc).__name__, "embedder": embedder.name})
        return None


def fuse(rankings: Sequence[Sequence[str]], k: int) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of rankings (ids, best first): each id scores the sum of
    1 / (RRF_K + rank) over the rankings holding it; the best ``k``, best first (ties by
    the first ranking's order, then by id)."""
    scores: dict[str, float] = {}
    first: dict[str, int] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
            first.setdefault(key, len(first))
    return sorted(scores.items(), key=lambda t: (-t[1], first[t[0]], t[0]))[:k]
