"""EMBEDDINGS=local against the Firestore emulator: each digest carries a vector, and recall
and search fuse BM25 with ``find_nearest`` on the user's own collection. The local embedder
is deterministic and lexical (hashed stems and character trigrams): it finds a memory by a
misspelt or inflected word that BM25's exact stems miss, which is what these tests use to
tell the vector path from BM25 alone."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from google.cloud.firestore_v1.vector import Vector

from shared.features.embeddings import LocalEmbedder, Task
from shared.features.memories import Memories, wire_memories
from tests.store.conftest import make_manager
from tests.store.test_memories import FsCounter, ended_session, memory_doc

TOPICS = {
    "shipping": ("When will my parcel to Lisbon arrive?", "Parcels to Portugal take 3-5 days."),
    "returns": ("How do I return the blue kettle I bought?", "Use the returns portal within 30 days."),
    "password": ("I forgot my password and cannot log in", "Reset it from the sign-in page link."),
}
MISSPELT = "Lisbonn"  # BM25 has no stem for it; its trigrams are Lisbon's


class BrokenEmbedder(LocalEmbedder):
    """An embedder whose service is down: every call raises, as a network error would."""

    name = "broken"

    def embed(self, texts: Sequence[str], task: Task) -> list[list[float]]:
        raise ConnectionError("embedding service unreachable")


def local(redis_url: str) -> tuple[Memories, object]:
    m = make_manager(redis_url, embeddings="local")
    return wire_memories(m), m


def test_a_digest_carries_a_vector_of_its_search_text(redis_server, firestore_emulator, uid, no_emulated_trigger):
    memories, m = local(redis_server.url)
    sid = ended_session(m, uid, [TOPICS["shipping"]])
    doc = memory_doc(m, uid, sid)
    assert doc is not None and isinstance(doc["embedding"], Vector)
    assert doc["embedding_model"] == LocalEmbedder.name
    expected = LocalEmbedder().embed([doc["search"]], "document")[0]
    assert list(doc["embedding"]) == expected
    # the controls' reads never carry the vector
    assert "embedding" not in memories.list(uid)["items"][0]
    assert all("embedding" not in d for d in memories.store.all(uid))


def test_search_and_recall_fuse_the_nearest_vectors_with_bm25(
    redis_server, firestore_emulator, uid, no_emulated_trigger
):
    memories, m = local(redis_server.url)
    sids = {name: ended_session(m, uid, [pair]) for name, pair in TOPICS.items()}
    # BM25 alone does not find the misspelt word; the vector path does, on the emulator
    bm25_only = wire_memories(make_manager(redis_server.url))
    assert bm25_only.search(uid, MISSPELT, limit=3)["items"] == []
    found = memories.search(uid, MISSPELT, limit=3)["items"]
    assert found and found[0]["session_id"] == sids["shipping"]
    assert all(x["session_id"] != sids["password"] for x in found)  # unrelated: past max_distance
    # a word both find ranks first by the fusion (1/61 + 1/61)
    both = memories.search(uid, "kettle return", limit=3)["items"]
    assert both[0]["session_id"] == sids["returns"] and both[0]["score"] == round(2 / 61, 4)
    # recall: the conversation's latest user message, one find_nearest, into the context
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", f"any news of my {MISSPELT} delivery?", user_id=uid)
    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert ctx.memories and ctx.memories[0].session_id == sids["shipping"]


def test_another_users_vectors_are_never_searched(redis_server, firestore_emulator, uid, no_emulated_trigger):
    memories, m = local(redis_server.url)
    other = "u-" + uuid.uuid4().hex[:12]
    canary = "zyxwcanary" + uuid.uuid4().hex[:6]
    ended_session(m, other, [(f"my secret word is {canary}", "noted")])
    mine = ended_session(m, uid, [TOPICS["password"]])
    assert memories.search(other, canary[:-1], limit=5)["items"]  # the owner finds it by its trigrams
    got = memories.search(uid, canary[:-1], limit=5)["items"]
    assert [x["session_id"] for x in got] in ([], [mine])
    assert all(canary not in x["text"] for x in got)


def test_a_failing_embedder_writes_the_digest_and_searches_by_bm25_with_a_log_line(
    redis_server, firestore_emulator, uid, no_emulated_trigger, caplog
):
    m = make_manager(redis_server.url, embeddings="local")
    memories = Memories(m, wire_memories(m).store, embedder=BrokenEmbedder())
    m.stats.digest = memories.digest
    caplog.set_level(logging.WARNING, logger="chat_memory.memory")
    sid = ended_session(m, uid, [TOPICS["returns"]])
    doc = memory_doc(m, uid, sid)
    assert doc is not None and "embedding" not in doc and doc["search"]
    assert any("embedding failed" in r.getMessage() for r in caplog.records)
    assert memories.search(uid, "kettle", limit=3)["items"][0]["session_id"] == sid


def test_a_recall_with_vectors_costs_one_query_of_at_most_its_depth(
    redis_server, firestore_emulator, uid, no_emulated_trigger
):
    memories, m = local(redis_server.url)
    for i in range(12):
        ended_session(m, uid, [(f"question about topic{i} and Lisbon", f"answer {i}")])
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "first message", user_id=uid)  # the corpus is read and cached
    counter = FsCounter(m.firestore.db())
    m.add_message(sid, "user", f"and {MISSPELT}?", user_id=uid)
    # the cached corpus is not read again; find_nearest reads at most depth + 1 documents
    assert 0 < counter.reads <= max(10, 4 * m.settings.memory_recall_k) + 1
    assert len(m.get_context_for_llm(sid, user_id=uid).memories) == m.settings.memory_recall_k
