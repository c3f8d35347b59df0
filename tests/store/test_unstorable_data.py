"""Data Firestore refuses never wedges a session nor opens the breaker for everyone else;
analytics of any session the limits allow are written, however long."""

from __future__ import annotations

import logging
import time

import pytest

from shared.errors import StoreError
from shared.features.triggers import handle_session_written
from shared.store.base import AppendRequest, CreateRequest, SessionState, StoredMessage
from shared.store.firestore.docs import kb_doc_id
from tests.store.conftest import make_manager


def _buffer_unchecked(m, sid: str, uid: str, role: str, content: str, metadata=None) -> None:
    """Append below the edge's checks, as data buffered in Redis before they existed."""
    now = time.time()
    msg = StoredMessage(0, f"old-{role}-{time.monotonic_ns()}", role, content, now, metadata)
    assert m.redis.append(AppendRequest(sid, msg, uid, None, now)).status == "ok"


def test_a_rejected_write_does_not_open_the_breaker(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    bad = SessionState("f" * 32, uid, "active", time.time(), time.time(), 0, {"__x__": 1, "big": 2**64})
    with pytest.raises(StoreError):
        m.firestore.create(CreateRequest(bad))
    assert m.firestore.breaker.state() == "closed"
    # another user on this instance still reaches Firestore
    other = m.create_session({}, user_id=uid + "-other")
    assert other.storage == "redis" and m.firestore.get_session(other.session_id) is not None


def test_a_session_whose_buffered_data_firestore_refuses_still_ends(redis_server, firestore_emulator, uid, caplog):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    _buffer_unchecked(m, sid, uid, "user", "q1")
    _buffer_unchecked(
        m,
        sid,
        uid,
        "assistant",
        "a1",
        {"sources": [["kb_a"]], "__x__": 1, "big": 10**30, "deep": {"": 2}, "keep": "me"},
    )
    m.add_message(sid, "user", "q2", user_id=uid)
    m.add_message(sid, "assistant", "a2", {"sources": ["kb_b"], "confidence": 0.5}, user_id=uid)

    with caplog.at_level(logging.ERROR, logger="chat_memory.firestore"):
        result = m.end_session_with_analytics(sid, user_id=uid)

    assert result.queries_recorded == 2
    assert m.firestore.breaker.state() == "closed"
    doc = m.firestore.get_session(sid)
    assert doc["status"] == "ended"
    final = {x["content"]: x for x in doc["final_messages"]}
    assert final["a1"]["metadata"] == {"sources": [], "keep": "me", "deep": {}}
    entries = m.firestore.read_analytics(sid)
    assert [e["response"] for e in entries] == ["a1", "a2"]
    assert entries[0]["metadata"] == {"keep": "me", "deep": {}}
    # said once, as a defect, with the session id and what was dropped
    # (the ERROR the end logged: records of other loggers are caught too when an earlier test
    # left them at INFO, such as "session created")
    said = [
        r
        for r in caplog.records
        if r.name == "chat_memory.firestore" and r.levelno >= logging.ERROR and getattr(r, "session_id", None) == sid
    ]
    assert said and "__x__" in str(said[0].__dict__.get("dropped"))
    # and the trigger counts it (here, or the emulated one if it runs)
    handle_session_written(sid, {"status": "active"}, doc, "evt-" + sid, stats=m.stats)
    assert m.get_user_stats(uid).total_sessions == 1


def test_kb_ids_that_are_not_document_ids_are_counted(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    ids = ["__kb__", "a/b", ".", "..", "x" * 200, "ok_id"]
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "q", user_id=uid)
    m.add_message(sid, "assistant", "a", {"sources": ids}, user_id=uid)
    m.end_session_with_analytics(sid, user_id=uid)
    doc = m.firestore.get_session(sid)
    handle_session_written(sid, {"status": "active"}, doc, "evt-" + sid, stats=m.stats)
    names = {kb_doc_id(i): i for i in ids}
    assert len(names) == len(ids)
    for name in names.values():
        kb = m.stats.kb_usage(name)
        assert kb["entry_id"] == name and kb["use_count"] >= 1, name


def test_a_session_of_hundreds_of_long_answers_ends_with_every_entry(redis_server, firestore_emulator, uid):
    # Each answer weighs ~10 KiB of JSON but ~34 KiB in Firestore (an int is 8 bytes there):
    # 320 of them are ~11 MiB, past one commit's size and one document's many times over.
    # The analytics buffer's bound has no ceiling: a deployment may allow this much.
    m = make_manager(redis_server.url, analytics_buffer_max_bytes=32 * 1024 * 1024)
    sid = m.create_session({}, user_id=uid).session_id
    n = 320
    for i in range(n):
        m.add_message(sid, "user", f"q{i}", user_id=uid)
        m.add_message(sid, "assistant", f"{i:04d}" + "a" * 10_000, {"scores": [0] * 3000}, user_id=uid)
    result = m.end_session_with_analytics(sid, user_id=uid)
    assert result.queries_recorded == n
    entries = m.firestore.read_analytics(sid)
    assert [int(e["response"][:4]) for e in entries] == list(range(n))
    assert all(len(e["metadata"]["scores"]) == 3000 for e in entries)
    assert m.firestore.get_session(sid)["status"] == "ended"


def test_a_session_citing_thousands_of_kb_entries_ends(redis_server, firestore_emulator, uid):
    # 5,400 distinct 200-byte KB ids: over 1 MiB of ids alone, past one session document.
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    n = 180
    for i in range(n):
        m.add_message(sid, "user", f"q{i}", user_id=uid)
        ids = [f"{i:04d}-{j:02d}-" + "k" * 192 for j in range(30)]
        m.add_message(sid, "assistant", f"a{i}", {"sources": ids}, user_id=uid)
    result = m.end_session_with_analytics(sid, user_id=uid)
    assert result.queries_recorded == n
    doc = m.firestore.get_session(sid)
    assert doc["status"] == "ended" and len(doc["final_messages"]) == m.settings.message_window
    # every answer's sources are in the analytics; the session keeps the entries it counts
    entries = m.firestore.read_analytics(sid)
    assert sum(len(e["sources"]) for e in entries) == n * 30
    assert 0 < len(doc["kb_sources"]) == len(doc["kb_source_uses"]) <= 400


def test_reads_of_buffered_non_finite_numbers_answer_json(redis_server, firestore_emulator, uid):
    import json

    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    _buffer_unchecked(m, sid, uid, "user", "q")
    _buffer_unchecked(m, sid, uid, "assistant", "a", {"confidence": float("inf"), "nan": float("nan"), "k": "v"})
    for answer in (m.get_history(sid, user_id=uid), m.get_context_for_llm(sid, user_id=uid)):
        body = json.dumps(answer.model_dump(), allow_nan=False)  # as the HTTP edge writes it
        assert json.loads(body)["messages"][-1]["metadata"] == {"confidence": None, "nan": None, "k": "v"}
    assert m.end_session_with_analytics(sid, user_id=uid).queries_recorded == 1
