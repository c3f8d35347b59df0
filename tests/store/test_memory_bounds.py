"""A memory's size bounds at the extremes Settings allows (MEMORY_TEXT_MAX_CHARS 100..4000,
MEMORY_SEARCH_MAX_BYTES 1024..65536), against real Redis and the Firestore emulator, the
trigger's part played in-process: what tests/e2e/test_memory_isolation.py cannot set on the
emulated functions (it checks the defaults over HTTP). The per-user bound
(MEMORY_MAX_SESSIONS) is tests/store/test_memories.py's
test_the_oldest_memories_go_past_the_bound; recall's Firestore error, its
test_a_firestore_error_in_recall_gives_no_memories_and_a_log_line."""

from __future__ import annotations

from typing import Any

import pytest

from shared.features.memories import wire_memories
from shared.features.triggers import handle_session_written
from tests.store.conftest import make_manager


def ended(m: Any, uid: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The session's memory document, once the session is ended and counted."""
    sid = m.create_session({}, user_id=uid).session_id
    for q, a in pairs:
        m.add_message(sid, "user", q, user_id=uid)
        m.add_message(sid, "assistant", a, {"sources": ["faq_1"], "confidence": 0.9}, user_id=uid)
    m.end_session_with_analytics(sid, user_id=uid)
    assert handle_session_written(sid, {"status": "active"}, m.firestore.get_session(sid), "e-" + sid, stats=m.stats)
    snap = m.firestore.db().collection("users").document(uid).collection("memories").document(sid).get()
    assert snap.exists
    return snap.to_dict() or {}


def bulky(i: int, n_bytes: int) -> str:
    """Many distinct words, four bytes a character where it counts, no sentence end."""
    words = " ".join(f"w{i}x{j}🙂é" for j in range(n_bytes // 11 + 1))
    return words.encode()[:n_bytes].decode("utf-8", "ignore")


@pytest.mark.parametrize(("text_max", "search_max"), [(100, 1024), (4000, 65536)])
def test_many_large_messages_leave_a_digest_within_the_bounds_at_their_extremes(
    redis_server, firestore_emulator, uid, no_emulated_trigger, text_max, search_max
):
    m = make_manager(redis_server.url, memory_text_max_chars=text_max, memory_search_max_bytes=search_max)
    wire_memories(m)
    pairs = [(bulky(i, 24 * 1024), bulky(100 + i, 4 * 1024)) for i in range(12)]  # ~340 KB of text
    doc = ended(m, uid, pairs)
    # filled to within a line of the bound (a line is at most 211 characters), never past it
    assert 0 < len(doc["text"]) <= text_max and len(doc["text"]) > text_max - 212
    assert search_max - 8 <= len(doc["search"].encode()) <= search_max  # reached, not passed


def test_a_first_question_longer_than_the_text_bound_still_leaves_text_the_model_reads(
    redis_server, firestore_emulator, uid, no_emulated_trigger
):
    """No line of the session fits in 100 characters: the session's summary, cut, is its text."""
    m = make_manager(redis_server.url, memory_text_max_chars=100)
    wire_memories(m)
    question = "My blue kettle that I bought in March from the Lisbon shop leaks from the base whenever I boil water"
    doc = ended(m, uid, [(question + ", can I return it?", "Yes, within 30 days.")])
    assert 0 < len(doc["text"]) <= 100 and "My blue kettle" in doc["text"]
