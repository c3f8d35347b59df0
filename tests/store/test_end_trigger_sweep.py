"""Session end, the trigger's exactly-once user stats, the sweep, Firestore writes."""

from __future__ import annotations

import time

from google.cloud.firestore_v1 import Client

from shared.features.sweep import sweep_idle_sessions
from shared.features.triggers import handle_session_written
from shared.store.firestore.scans import SessionScans
from shared.store.redis.keys import Meta
from tests.store.conftest import make_manager


class WriteCounter:
    """Counts document writes at the client: every commit's writes."""

    def __init__(self, client: Client) -> None:
        self.writes = 0
        self.reads = 0
        orig_commit = client._firestore_api.commit
        orig_get = client._firestore_api.batch_get_documents
        orig_query = client._firestore_api.run_query

        def commit(request=None, **kw):
            self.writes += len((request or {}).get("writes", []))
            return orig_commit(request=request, **kw)

        def batch_get(request=None, **kw):
            self.reads += len((request or {}).get("documents", []))
            return orig_get(request=request, **kw)

        def run_query(request=None, **kw):
            self.reads += 1
            return orig_query(request=request, **kw)

        client._firestore_api.commit = commit
        client._firestore_api.batch_get_documents = batch_get
        client._firestore_api.run_query = run_query


def test_session_writes_at_most_six_documents_plus_kb_and_weak_answers(
    redis_server, firestore_emulator, uid, no_emulated_trigger
):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    client = firestore.Client(project="demo-chat-memory", credentials=AnonymousCredentials())
    counter = WriteCounter(client)
    m = make_manager(redis_server.url, fs_client=client)
    sid = m.create_session({}, user_id=uid).session_id
    assert counter.writes == 1
    for i in range(10):
        m.add_message(sid, "user", f"q{i}", user_id=uid)
        conf = 0.2 if i < 3 else 0.9  # three answers below LOW_CONFIDENCE_THRESHOLD
        m.add_message(sid, "assistant", f"a{i}", {"sources": ["kb_1", "kb_2"], "confidence": conf}, user_id=uid)
    assert counter.writes == 1  # nothing during the conversation
    m.end_session_with_analytics(sid, user_id=uid)
    doc = m.firestore.get_session(sid)
    assert handle_session_written(sid, {"status": "active"}, doc, "evt-1", stats=m.stats)
    # create, session+analytics, user + its counted marker, the day's rollup; + 2 distinct KB
    # entries + the 3 weak answers (at most rollups.LOW_CONFIDENCE_PER_SESSION)
    assert counter.writes == 6 + 2 + 3


def test_trigger_counts_once_under_redelivery_and_retried_end(
    redis_server, firestore_emulator, uid, no_emulated_trigger
):
    m = make_manager(redis_server.url)
    sids = []
    for _ in range(2):
        sid = m.create_session({}, user_id=uid).session_id
        m.add_message(sid, "user", "q", user_id=uid)
        m.add_message(sid, "assistant", "a", {"sources": ["kb_once"]}, user_id=uid)
        m.end_session_with_analytics(sid, user_id=uid)
        m.end_session_with_analytics(sid, user_id=uid)  # retried end
        sids.append(sid)
    for sid in sids:
        doc = m.firestore.get_session(sid)
        results = [
            handle_session_written(sid, {"status": "active"}, doc, "evt-" + sid, stats=m.stats) for _ in range(3)
        ]
        assert results == [True, False, False]
        # a later write to an already-ended document is not a transition
        assert not handle_session_written(sid, doc, doc, "evt-other", stats=m.stats)
    db = m.firestore.db()
    user = db.collection("users").document(uid).get().to_dict()
    assert (user["total_sessions"], user["total_messages"], user["total_queries"]) == (2, 4, 2)
    assert user["recent_sessions"] == list(reversed(sids))
    kb = m.stats.kb_usage("kb_once")
    assert kb["use_count"] >= 2  # other tests may cite it too; at least ours, exactly once each
    before = kb["use_count"]
    handle_session_written(sids[0], {"status": "active"}, m.firestore.get_session(sids[0]), "evt-x", stats=m.stats)
    assert m.stats.kb_usage("kb_once")["use_count"] == before


def test_sweep_ends_idle_sessions_only(redis_server, firestore_emulator, uid, no_emulated_trigger):
    m = make_manager(redis_server.url)
    idle = m.create_session({}, user_id=uid).session_id
    m.add_message(idle, "user", "hello?", user_id=uid)
    busy = m.create_session({}, user_id=uid).session_id
    future = time.time() + m.settings.session_idle_timeout_s + 60
    # the busy one was active "just now" from the sweep's point of view
    m.redis.client().hset(m.redis.key_names.meta(busy), Meta.LAST_ACTIVE_AT, repr(future - 10))
    counts = sweep_idle_sessions(m, SessionScans(m.firestore.fs), m.stats, now=future)
    assert counts["ended"] >= 1
    assert m.firestore.get_session(idle)["status"] == "ended"
    assert m.firestore.get_session(idle)["end_reason"] == "timeout"
    assert m.firestore.get_session(busy)["status"] == "active"
    ended = m.firestore.get_session(idle)
    # a second sweep finds nothing more to do for these: the ended one is not ended again
    # (no new end time or reason), the busy one is still left alone
    sweep_idle_sessions(m, SessionScans(m.firestore.fs), m.stats, now=future)
    assert m.firestore.get_session(idle) == ended
    assert m.firestore.get_session(busy)["status"] == "active"


def test_history_and_stats_after_the_end(redis_server, firestore_emulator, uid, no_emulated_trigger):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    for i in range(6):
        m.add_message(sid, "user", f"q{i}", user_id=uid)
        m.add_message(sid, "assistant", f"a{i}", user_id=uid)
    m.end_session_with_analytics(sid, user_id=uid)
    h = m.get_history(sid, user_id=uid)
    assert [x.content for x in h.messages] == ["q2", "a2", "q3", "a3", "q4", "a4", "q5", "a5"]
    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert ctx.summary is not None and ctx.summary.message_count == 12 and len(ctx.messages) == 8
    assert m.get_user_stats(uid).total_sessions == 0  # the trigger has not run here
    handle_session_written(sid, {"status": "active"}, m.firestore.get_session(sid), "e", stats=m.stats)
    stats = m.get_user_stats(uid)
    assert (stats.total_sessions, stats.total_messages, stats.recent_sessions) == (1, 12, [sid])


def test_sweep_repairs_stats_a_failed_trigger_missed(redis_server, firestore_emulator, uid, no_emulated_trigger):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "q", user_id=uid)
    m.add_message(sid, "assistant", "a", {"sources": ["kb_repair"]}, user_id=uid)
    m.end_session_with_analytics(sid, user_id=uid)
    # the trigger "failed": nothing was counted. The next sweep counts it, once.
    assert sweep_idle_sessions(m, SessionScans(m.firestore.fs), m.stats)["stats_repaired"] >= 1
    sweep_idle_sessions(m, SessionScans(m.firestore.fs), m.stats)
    stats = m.get_user_stats(uid)
    assert (stats.total_sessions, stats.total_queries) == (1, 1)
    # and the real trigger arriving late counts nothing more
    assert not handle_session_written(sid, {"status": "active"}, m.firestore.get_session(sid), "late", stats=m.stats)


def test_a_sweep_past_its_budget_stops_between_pages_and_the_next_goes_on(
    redis_server, firestore_emulator, uid, no_emulated_trigger
):
    m = make_manager(redis_server.url, sweep_batch_size=5, sweep_budget_s=60)
    sids = []
    for _ in range(7):
        sid = m.create_session({}, user_id=uid).session_id
        m.add_message(sid, "user", "anyone?", user_id=uid)
        sids.append(sid)
    future = time.time() + m.settings.session_idle_timeout_s + 60
    ticks = iter([0.0, 61.0])  # the run's start, then the budget spent after its first page
    counts = sweep_idle_sessions(m, SessionScans(m.firestore.fs), m.stats, now=future, clock=lambda: next(ticks))
    assert counts["budget_spent"] == 1 and counts["checked"] == 5  # one page, then stopped: no end cut short
    for _ in range(100):  # the next runs go on, oldest first (other tests' idle sessions included)
        if all(m.firestore.get_session(s)["status"] == "ended" for s in sids):
            break
        sweep_idle_sessions(m, SessionScans(m.firestore.fs), m.stats, now=future)
    assert [m.firestore.get_session(s)["end_reason"] for s in sids] == ["timeout"] * 7
