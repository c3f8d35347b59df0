"""Counters that mean what they say: KB usage counts the answers that cited an entry, and a
user's ended session is counted once however many sessions end around it."""

from __future__ import annotations

import time
import uuid

from shared.features.sweep import repair_user_stats
from shared.features.triggers import handle_session_written
from shared.store.firestore.scans import SessionScans
from tests.store.conftest import make_manager


def test_kb_use_count_counts_answers_and_session_count_sessions(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    x, y = f"kb_x_{uid}", f"kb_y_{uid}"
    cites = [[x], [x, y], [x], [x], [x, x], [x]]  # 6 answers cite x (one twice), 1 cites y
    sids = []
    for n_answers in (6, 2):
        sid = m.create_session({}, user_id=uid).session_id
        for sources in cites[:n_answers]:
            m.add_message(sid, "user", "q", user_id=uid)
            m.add_message(sid, "assistant", "a", {"sources": sources}, user_id=uid)
        m.end_session_with_analytics(sid, user_id=uid)
        sids.append(sid)
    for sid in sids:  # delivered twice: counted once
        for event in ("e1", "e2"):
            handle_session_written(sid, {"status": "active"}, m.firestore.get_session(sid), event, stats=m.stats)
    kx, ky = m.stats.kb_usage(x), m.stats.kb_usage(y)
    assert (kx["use_count"], kx["session_count"]) == (8, 2)
    assert (ky["use_count"], ky["session_count"]) == (2, 2)


def test_a_user_ending_hundreds_of_sessions_an_hour_is_counted_once_each(firestore_emulator):
    # More sessions than any bounded per-user list of counted ids would hold, all within the
    # sweep's repair window: the repair must not count any of them again.
    m = make_manager(None)
    uid = "busy-" + uuid.uuid4().hex[:12]
    db = m.firestore.db()
    now = time.time()
    docs = []
    batch = db.batch()
    for i in range(230):
        sid = uuid.uuid4().hex
        doc = {
            "session_id": sid,
            "owner": uid,
            "status": "ended",
            "created_at": now - 600,
            "ended_at": now - 300 + i,
            "message_count": 2,
            "queries_recorded": 1,
            "kb_sources": [],
        }
        batch.set(db.collection("sessions").document(sid), doc)
        docs.append(doc)
    batch.commit()
    for doc in docs:  # the trigger, once per session (here, or the emulated one first)
        handle_session_written(doc["session_id"], {"status": "active"}, doc, "evt", stats=m.stats)
    repair_user_stats(SessionScans(m.firestore.fs), m.stats, now)
    stats = m.get_user_stats(uid)
    assert (stats.total_sessions, stats.total_messages, stats.total_queries) == (230, 460, 230)


def test_the_repair_goes_past_a_session_it_cannot_count(firestore_emulator):
    # An ended session Firestore refuses to count (its owner is not a valid document id:
    # data from before user ids were checked) must not stop the repair of the ones after it.
    m = make_manager(None)
    db = m.firestore.db()
    now = time.time()
    good_uid = "late-" + uuid.uuid4().hex[:12]
    for owner, ended_at in (("__legacy__", now - 3000), (good_uid, now - 2999)):
        sid = uuid.uuid4().hex
        ref = db.collection("sessions").document(sid)
        # ended without an owner, then given one: neither write is a transition the
        # emulated trigger counts, so only the repair can
        ref.set({"session_id": sid, "status": "ended", "ended_at": ended_at, "message_count": 2})
        ref.update({"owner": owner})
    assert repair_user_stats(SessionScans(m.firestore.fs), m.stats, now) >= 1
    assert m.get_user_stats(good_uid).total_sessions == 1
    assert m.firestore.breaker.state() == "closed"
