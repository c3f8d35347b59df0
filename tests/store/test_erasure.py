"""Erasure against real Redis and the Firestore emulator, with a canary in every message:
afterwards no Redis key and no Firestore document (every collection and sub-collection)
holds a canary or the user id; another user's data is untouched; and nothing comes back -
a redelivered session-end event, the sweep's repair, an append on another instance, an end
already in flight there, a merge of what another instance's memory held."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from shared.errors import NotFound, PermissionDenied, Unavailable
from shared.features.erasure import Erasure, subject_hash
from shared.features.sweep import repair_user_stats
from shared.features.triggers import handle_session_written
from shared.store.firestore.erasure import ErasureStore
from shared.store.firestore.reports import ReportStore
from shared.store.firestore.scans import SessionScans
from tests.store.conftest import dead_firestore_client, make_manager


def erasure(m: Any) -> Erasure:
    """The erasure over the manager's own Firestore (what the instance hands it)."""
    return Erasure(m, ErasureStore(m.firestore.fs), ReportStore(m.firestore.fs))


def canary() -> str:
    return "canary-" + uuid.uuid4().hex[:12]


def converse(m: Any, sid: str, uid: str, n: int, written: list[str]) -> None:
    for _ in range(n):
        q, a = canary(), canary()
        m.add_message(sid, "user", f"question {q}", user_id=uid)
        m.add_message(sid, "assistant", f"answer {a}", {"sources": ["faq_x"], "confidence": 0.2}, user_id=uid)
        written += [q, a]


def redis_text(url: str) -> str:
    """Every key and value of the test's redis-server, as one text."""
    import redis

    r = redis.Redis.from_url(url, decode_responses=True)
    parts = []
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        value: Any = {
            "string": r.get,
            "hash": r.hgetall,
            "list": lambda k: r.lrange(k, 0, -1),
            "set": r.smembers,
            "zset": lambda k: r.zrange(k, 0, -1),
        }.get(kind, lambda k: "")(key)
        parts.append(f"{key} {value}")
    return "\n".join(parts)


def firestore_text(db: Any) -> str:
    """Every document of the emulator's database, sub-collections included, as one text."""
    parts = []

    def walk(col: Any) -> None:
        # In pages: one stream of a whole collection the suite has filled (thousands of
        # documents by now) can outlast the emulator's deadline on a busy machine.
        last = None
        while True:
            query = col.order_by("__name__").limit(300)
            if last is not None:
                query = query.start_after(last)
            docs = list(query.stream())
            for doc in docs:
                parts.append(f"{doc.reference.path} {doc.to_dict()}")
                for sub in doc.reference.collections():
                    walk(sub)
            if len(docs) < 300:
                return
            last = docs[-1]

    for col in db.collections():
        walk(col)
    return "\n".join(parts)


def test_a_user_erased_leaves_no_canary_and_no_id_and_nothing_comes_back(
    redis_server_persistent, firestore_emulator, uid, no_emulated_trigger
):
    a = make_manager(redis_server_persistent.url)  # this instance erases
    b = make_manager(redis_server_persistent.url)  # another instance, busy with the same user
    other = "u-" + uuid.uuid4().hex[:12]
    mine: list[str] = []
    theirs: list[str] = []
    ended = a.create_session({"platform": canary()}, user_id=uid).session_id
    converse(a, ended, uid, 2, mine)
    a.end_session_with_analytics(ended, user_id=uid)
    old_doc = a.firestore.get_session(ended)
    assert handle_session_written(ended, {"status": "active"}, old_doc, "e1", stats=a.stats)
    active = a.create_session({}, user_id=uid).session_id
    converse(a, active, uid, 2, mine)
    redis_server_persistent.kill()  # outage: messages held in Firestore
    converse(a, active, uid, 1, mine)
    redis_server_persistent.start()
    time.sleep(a.settings.redis_breaker_cooldown_s + 0.1)
    live = a.firestore
    a.firestore = type(live)(a.settings, client=dead_firestore_client())
    redis_only = a.create_session({}, user_id=uid).session_id  # Firestore down: no document
    converse(a, redis_only, uid, 1, mine)
    a.firestore = live
    in_flight = a.create_session({}, user_id=uid).session_id
    converse(a, in_flight, uid, 1, mine)
    snap = b.redis.begin_end(in_flight, uid, "b-token")  # an end on b, snapshot taken
    assert snap.status == "ok"
    kept = a.create_session({}, user_id=other).session_id
    converse(a, kept, other, 2, theirs)

    receipt = erasure(a).erase_user(uid, requested_by="self")
    assert receipt["complete"] and receipt["erased"]["sessions"] == 4
    assert receipt["erased"]["messages"] >= len(mine)

    # Nothing comes back.
    assert not handle_session_written(ended, {"status": "active"}, old_doc, "e1-late", stats=a.stats)
    repair_user_stats(SessionScans(a.firestore.fs), a.stats, time.time())
    with pytest.raises(NotFound):
        b.add_message(active, "user", f"late {canary()}", user_id=uid)
    with pytest.raises(NotFound):
        b.get_context_for_llm(active, user_id=uid)
    with pytest.raises(NotFound):
        b.end_session_with_analytics(in_flight, user_id=uid)  # b's end finds the tombstone
    assert a.firestore.read_analytics(in_flight) == []

    r_text, f_text = redis_text(redis_server_persistent.url), firestore_text(a.firestore.db())
    assert [c for c in mine if c in r_text or c in f_text] == []
    assert uid not in r_text and uid not in f_text
    assert all(c in r_text or c in f_text for c in theirs)  # another user's data is untouched

    again = erasure(a).erase_user(uid, requested_by="self")
    assert again == receipt  # the same receipt, nothing new erased


def test_what_another_instance_held_in_memory_is_not_merged_back(redis_server, firestore_emulator, uid):
    a = make_manager(redis_server.url)
    b = make_manager(redis_server.url)
    sid = a.create_session({}, user_id=uid).session_id
    a.add_message(sid, "user", "before", user_id=uid)
    assert b.get_context_for_llm(sid, user_id=uid).storage == "redis"  # b knows the owner
    live = b.firestore
    b.firestore = type(live)(b.settings, client=dead_firestore_client())
    b_redis = b.redis
    b.redis = type(b_redis)(b.settings.model_copy(update={"redis_url": None}))  # both down, for b
    words = canary()
    assert b.add_message(sid, "user", f"held {words}", user_id=uid).storage == "memory"
    erasure(a).erase_session(sid, uid)
    b.firestore, b.redis = live, b_redis  # b's stores are back: its next operation merges
    with pytest.raises(NotFound):
        b.add_message(sid, "user", "after", user_id=uid)
    assert words not in redis_text(redis_server.url) and words not in firestore_text(a.firestore.db())
    assert b.memory.snapshot(sid) is None


def test_deleting_one_session_is_the_owners_alone(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "hello", user_id=uid)
    with pytest.raises(PermissionDenied):
        erasure(m).erase_session(sid, "u-someone-else")
    assert m.get_history(sid, user_id=uid).messages[0].content == "hello"
    counts = erasure(m).erase_session(sid, uid)
    assert counts["sessions"] == 1 and counts["messages"] == 1
    assert erasure(m).erase_session(sid, uid)["sessions"] == 0  # again: nothing new
    with pytest.raises(NotFound):
        m.get_session(sid, user_id=uid)


def test_an_erasure_that_stopped_half_way_is_finished_by_the_next_call(
    redis_server_persistent, firestore_emulator, uid
):
    m = make_manager(redis_server_persistent.url)
    sids = [m.create_session({}, user_id=uid).session_id for _ in range(3)]
    for sid in sids:
        m.add_message(sid, "user", f"hello {canary()}", user_id=uid)
    erasure(m).erase_session(sids[0], uid)  # as far as a first call got before it stopped
    redis_server_persistent.kill()  # then Redis is away: the call cannot finish
    with pytest.raises(Unavailable):
        erasure(m).erase_user(uid, requested_by="self")
    receipt_id = subject_hash(uid)[:32]
    assert ErasureStore(m.firestore.fs).receipt(receipt_id)["complete"] is False
    redis_server_persistent.start()
    time.sleep(m.settings.redis_breaker_cooldown_s + 0.1)
    done = erasure(m).erase_user(uid, requested_by="self")
    assert done["complete"] and ErasureStore(m.firestore.fs).receipt(receipt_id)["complete"] is True
    for sid in sids:
        with pytest.raises(NotFound):
            m.get_session(sid, user_id=uid)
    assert uid not in redis_text(redis_server_persistent.url)


def test_a_session_redis_no_longer_holds_is_erased_too(redis_server, firestore_emulator, uid):
    """Its keys ran out (2 h after its last use) but its document and analytics stay: the
    erasure must not take the missing state hash for another user's."""
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "a question", user_id=uid)
    m.add_message(sid, "assistant", "an answer", {"confidence": 0.1}, user_id=uid)
    m.end_session_with_analytics(sid, user_id=uid)
    m.redis.client().delete(*m.redis.keys(sid))
    counts = erasure(m).erase_session(sid, uid)
    assert counts["sessions"] == 1 and counts["redis_keys"] == 0
    assert m.firestore.read_analytics(sid) == []
    with pytest.raises(NotFound):
        m.get_session(sid, user_id=uid)


def test_an_end_finishing_after_an_erasure_leaves_the_tombstone(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "hello", user_id=uid)
    snap = m.redis.begin_end(sid, uid)
    assert snap.status == "ok"
    erasure(m).erase_session(sid, uid)
    assert m.redis.finish_end(sid, {"status": "ended"}) == "already"
    assert (m.redis.meta(sid) or {}).get("status") == "erased"
    with pytest.raises(NotFound):
        m.get_context_for_llm(sid, user_id=uid)


def test_a_session_created_while_firestore_was_down_stays_erased_when_its_document_comes_late(
    redis_server, firestore_emulator, uid
):
    """Issue 24, item 7: the erasure wrote no Firestore tombstone for a session without a
    document, so the document written late (on the next operation after Firestore's outage)
    brought it back as active, owner and profile included."""
    m = make_manager(redis_server.url)
    live = m.firestore
    m.firestore = type(live)(m.settings, client=dead_firestore_client())
    m.firestore.settings = m.settings.model_copy(update={"firestore_timeout_s": 0.5})
    info = m.create_session({"platform": "web"}, user_id=uid)
    assert info.storage == "redis"
    state = m.redis.state(info.session_id)
    m.firestore = live
    erasure(m).erase_session(info.session_id, uid)
    live.ensure_session(state)  # an instance that read the state before the erasure writes the document now
    doc = live.get_session(info.session_id)
    assert doc is not None and doc["status"] == "erased" and "owner" not in doc and "user_info" not in doc


def test_deleting_a_session_frees_its_slot_of_the_users_cap(redis_server, firestore_emulator, uid):
    """Issue 24, item 9: delete_session kept the slot (409 too_many_sessions for the TTL)."""
    m = make_manager(redis_server.url, max_active_sessions_per_user=1)
    first = m.create_session({}, user_id=uid).session_id
    erasure(m).erase_session(first, uid)
    assert m.create_session({}, user_id=uid).session_id != first


def test_two_erasures_of_one_user_at_once_leave_a_receipt_that_counts_everything_once(
    redis_server, firestore_emulator, uid
):
    """Issue 24, item 17: each run kept its own totals and saved them whole: the receipt said
    what the last run to save had erased, not what was erased."""
    import threading

    m = make_manager(redis_server.url)
    sids = [m.create_session({}, user_id=uid).session_id for _ in range(6)]
    for sid in sids:
        m.add_message(sid, "user", canary(), user_id=uid)
    start = threading.Barrier(2)
    answers: list[dict[str, Any]] = []

    def run() -> None:
        start.wait()
        answers.append(erasure(make_manager(redis_server.url)).erase_user(uid, requested_by="self"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    receipt = ErasureStore(m.firestore.fs).receipt(subject_hash(uid)[:32])
    assert receipt["complete"] is True
    assert receipt["erased"]["sessions"] == len(sids) and receipt["erased"]["messages"] == len(sids), receipt
    # each run answers the receipt as it stood when it finished: never more than was erased
    assert len(answers) == 2 and all(a["erased"]["sessions"] <= len(sids) for a in answers), answers
