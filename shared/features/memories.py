"""The user's memories of past sessions: recall into a conversation, and the user's controls
(list, search, delete).

Recall runs once per user message taken (``SessionManager.on_user_message``), never on a
context read: it reads the user's memories from Firestore once per conversation (cached in
Redis beside the session, ``Keys.corpus``), ranks them against the conversation's latest
user messages and stores the best MEMORY_RECALL_K (``Keys.recall``), which read.lua returns
with the context in its one round trip. A deletion raises the user's memory generation
(``Keys.memory_generation``): a corpus cached before it is read again, and a recall that
raced it is dropped. Recall never fails a turn: any store error leaves no memories and a log
line.

With EMBEDDINGS=local|vertex each digest carries a vector, and recall and search rank twice:
BM25 over the search texts and Firestore's ``find_nearest`` on the user's collection (one
query, its ``limit`` documents read, per recall), fused by reciprocal rank
(``embeddings.fuse``); the score is then the fused one. An embedder or vector-search failure
falls back to BM25 alone.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.core.manager import SessionManager
from shared.core.models import validate_session_id, validate_user_id
from shared.cursor import decode_cursor, encode_cursor
from shared.errors import InvalidArgument, NotFound, StoreError, Unavailable
from shared.features.embeddings import Embedder, build_embedder, embed_one, fuse
from shared.features.memory import BM25Ranker, Ranker, build_digest, recall_query
from shared.store.firestore.memories import MemoryStore
from shared.store.firestore.stats import Stats

log = logging.getLogger("chat_memory.memory")
MAX_PAGE = 50
CANDIDATES = 4  # each ranking's depth before fusion: CANDIDATES x the results wanted (at least 10)


def _public(doc: dict[str, Any], score: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "session_id": doc["session_id"],
        "text": doc.get("text") or "",
        "ended_at": float(doc.get("ended_at") or 0),
        "seq_from": int(doc.get("seq_from") or 0),
        "seq_to": int(doc.get("seq_to") or 0),
    }
    if score is not None:
        out["score"] = round(score, 4)
    return out


class Memories:
    def __init__(
        self,
        manager: SessionManager,
        store: MemoryStore,
        ranker: Ranker | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.m = manager
        self.store = store
        self.ranker = ranker or BM25Ranker()
        self.embedder = embedder if embedder is not None else build_embedder(manager.settings)

    def digest(self, sid: str, session: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
        """The memory of an ended session, with its vector when EMBEDDINGS is set (computed
        here, before the counting transaction, so a retried transaction embeds nothing again)."""
        doc = build_digest(sid, session, entries, self.m.settings)
        if self.embedder is not None and doc["search"]:
            vector = embed_one(self.embedder, doc["search"], "document")
            if vector is not None:
                doc |= {"embedding": vector, "embedding_model": self.embedder.name}
        return doc

    def rank(
        self, uid: str, query: str, docs: list[dict[str, Any]], k: int, skip: str | None = None
    ) -> list[tuple[dict[str, Any], float]]:
        """``docs`` (the user's memories) ranked against ``query``, best ``k``: BM25 alone, or
        fused with the nearest vectors when an embedder is set (one Firestore query; a failure
        leaves BM25 alone)."""
        depth = k if self.embedder is None else max(10, CANDIDATES * k)
        bm25 = [(docs[i], s) for i, s in self.ranker.rank(query, [str(d.get("search") or "") for d in docs], depth)]
        if self.embedder is None:
            return bm25[:k]
        vector = embed_one(self.embedder, query, "query")
        if vector is None:
            return bm25[:k]
        try:
            near = [
                d
                for d in self.store.nearest(uid, vector, depth + 1, self.embedder.name)
                if d.get("session_id") != skip and float(d.get("distance", 2.0)) <= self.embedder.max_distance
            ]
        except StoreError:
            log.warning("vector search failed; BM25 alone")
            return bm25[:k]
        by_id = {d["session_id"]: d for d in near} | {d["session_id"]: d for d, _ in bm25}
        fused = fuse([[d["session_id"] for d, _ in bm25], [d["session_id"] for d in near[:depth]]], k)
        return [(by_id[s], score) for s, score in fused]

    @property
    def k(self) -> int:
        return self.m.settings.memory_recall_k

    # ------------------------------------------------------------------ recall
    def recall(self, sid: str, user_id: str | None) -> None:
        """Rank the user's memories against the session's latest user messages and store the
        best for the context reads. Never raises a store error (the turn goes on)."""
        if self.k == 0 or user_id is None or not self.m.redis.configured or not self.store.configured:
            return
        cache = self.m.redis.recall
        try:
            generation = cache.generation(user_id)
            got = cache.inputs(sid, user_id, self.m.settings.message_window)
            if got.status != "ok":
                return  # memory off, another user's, or not active: nothing to recall
            corpus: dict[str, Any] | None = got.corpus
            fresh: dict[str, Any] | None = None
            if corpus is None or corpus.get("generation") != generation:
                try:
                    items = self.store.all(user_id)
                except StoreError:
                    log.warning("recall skipped: memories unavailable", extra={"session_id": sid})
                    cache.put(sid, [], None)
                    return
                corpus = fresh = {
                    "generation": generation,
                    "items": [
                        {k: d.get(k) for k in ("session_id", "text", "search", "ended_at")}
                        for d in items
                        if d.get("session_id") != sid
                    ],
                }
            docs: list[dict[str, Any]] = list(corpus.get("items") or [])
            ranked = self.rank(user_id, recall_query(got.recent), docs, self.k, skip=sid)
            memories = [
                {
                    "session_id": d["session_id"],
                    "text": d.get("text") or "",
                    "score": round(score, 4),
                    "ended_at": float(d.get("ended_at") or 0),
                }
                for d, score in ranked
            ]
            cache.put(sid, memories, fresh)
            # A deletion between the first look and now: what was just stored may hold it.
            if cache.generation(user_id) != generation:
                cache.clear(sid)
        except StoreError:
            log.warning("recall skipped: redis unavailable", extra={"session_id": sid})

    # ------------------------------------------------------------------ the user's controls
    def list(self, user_id: str | None, *, limit: int = 20, cursor: object = None) -> dict[str, Any]:
        """The caller's own memories, newest first, a page at a time."""
        uid = validate_user_id(user_id)
        after = decode_cursor(cursor)
        if after is not None:
            validate_session_id_cursor(after[1])
        try:
            docs = self.store.page(uid, limit + 1, after)
        except StoreError as exc:
            raise Unavailable("memories are unavailable; try again shortly") from exc
        out: dict[str, Any] = {"items": [_public(d) for d in docs[:limit]]}
        if len(docs) > limit:
            last = docs[limit - 1]
            out["next_cursor"] = encode_cursor(float(last.get("ended_at") or 0), last["session_id"])
        return out

    def search(self, user_id: str | None, q: object, *, limit: int = 10) -> dict[str, Any]:
        """The caller's own memories ranked against ``q`` (BM25), best first."""
        uid = validate_user_id(user_id)
        query = validate_query(q, self.m.settings.memory_query_max_chars)
        try:
            docs = self.store.all(uid)
        except StoreError as exc:
            raise Unavailable("memories are unavailable; try again shortly") from exc
        return {"items": [_public(d, score) for d, score in self.rank(uid, query, docs, limit)]}

    def delete(self, user_id: str | None, session_id: object) -> dict[str, Any]:
        """Delete the caller's memory of a session: 404 if they hold none (another user's
        session id too: its existence is not told)."""
        uid = validate_user_id(user_id)
        sid = validate_session_id(session_id)
        try:
            deleted = self.store.delete(uid, sid)
        except StoreError as exc:
            raise Unavailable("memories are unavailable; try again shortly") from exc
        if not deleted:
            raise NotFound("no such memory")
        self.forget_cached(uid)
        log.info("memory deleted", extra={"session_id": sid})
        return {"session_id": sid, "deleted": True}

    def forget_cached(self, uid: str) -> None:
        """After a deletion: no cached corpus or recall of the user's is used again."""
        redis = self.m.redis
        if not redis.configured:
            return
        try:
            redis.recall.bump(uid)
            for sid in redis.user_session_ids(uid):
                redis.recall.clear(sid)
        except StoreError:
            log.warning("memory caches not cleared: redis unavailable (they expire with their sessions)")


def validate_query(q: object, max_chars: int) -> str:
    if not isinstance(q, str) or not q.strip():
        raise InvalidArgument("q must be a non-empty string", details={"field": "q"})
    if len(q) > max_chars:
        raise InvalidArgument(f"q must be at most {max_chars} characters", details={"field": "q"})
    try:
        q.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument("q must be valid UTF-8 text", details={"field": "q"}) from None
    return q


def validate_session_id_cursor(doc_id: str) -> None:
    from shared.cursor import bad_cursor

    try:
        validate_session_id(doc_id)
    except InvalidArgument:
        raise bad_cursor() from None


def wire_memories(manager: SessionManager, store: MemoryStore | None = None, stats: Stats | None = None) -> Memories:
    """The memory feature over ``manager``: its stats write each ended session's digest, its
    user messages are recalled against. The instance does this once; tests and tools too."""
    store = store or MemoryStore(manager.firestore.fs)
    stats = stats or manager.stats
    stats.memories = store
    memories = Memories(manager, store)
    stats.digest = memories.digest
    manager.on_user_message = memories.recall
    return memories
