"""Ends racing other instances: outage-path appends, other ends, merges, summary stores,
a lost commit reply, and the sweep. Real redis-servers and the Firestore emulator; the
interleavings are forced by holding one end between its snapshot and its Firestore write
(in its summarizer, which runs exactly there)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from shared.core.summarizer import ExtractiveSummarizer
from shared.errors import FailedPrecondition, Unavailable
from shared.features.sweep import sweep_idle_sessions
from shared.store.base import StoredMessage
from shared.store.firestore.scans import SessionScans
from shared.store.redis.keys import Meta
from tests.store.conftest import make_manager

WAIT_S = 60.0  # only ever reached when the code under test is wrong


class HeldSummarizer:
    """The real extractive summarizer; once armed, its first call (the end that took the
    snapshot) waits until released. Counts calls and the most ever in flight."""

    name = "extractive"

    def __init__(self, *, wait_for_second: bool = False) -> None:
        self._real = ExtractiveSummarizer()
        self._lock = threading.Lock()
        self.armed = False
        self.wait_for_second = wait_for_second
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.entered = threading.Event()
        self.second = threading.Event()
        self.release = threading.Event()

    def summarize(self, previous: str | None, messages: Any) -> str:
        with self._lock:
            n = self.calls = self.calls + (1 if self.armed else 0)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.armed and n == 1:
                self.entered.set()
                if self.wait_for_second:
                    self.second.wait(WAIT_S)
                else:
                    self.release.wait(WAIT_S)
            elif self.armed and n == 2:
                self.second.set()
            return self._real.summarize(previous, messages)
        finally:
            with self._lock:
                self.in_flight -= 1


def poll(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def outcome(fut: Future) -> Any:
    try:
        return fut.result(WAIT_S)
    except Exception as exc:  # noqa: BLE001 - the test compares outcomes
        return exc


def final_contents(m: Any, sid: str) -> list[str]:
    return [x["content"] for x in m.firestore.get_session(sid)["final_messages"]]


def pending_docs(m: Any, sid: str) -> list[str]:
    return [d.id for d in m.firestore.db().collection("sessions").document(sid).collection("pending").stream()]


def test_outage_append_during_an_end_is_in_the_final_state(redis_server, firestore_emulator, uid):
    held = HeldSummarizer()
    ender = make_manager(redis_server.url)
    ender.summaries.summarizer = held
    sid = ender.create_session({}, user_id=uid).session_id
    ender.add_message(sid, "user", "q1", user_id=uid)
    ender.add_message(sid, "assistant", "a1", user_id=uid)
    # another instance whose Redis is unreachable: its appends take the Firestore path
    outage = make_manager(None)
    held.armed = True
    with ThreadPoolExecutor(1) as ex:
        end = ex.submit(ender.end_session_with_analytics, sid, user_id=uid)
        assert held.entered.wait(WAIT_S)  # the end holds its snapshot, not yet written
        try:
            r = outage.add_message(sid, "user", "during the end", user_id=uid)
            accepted = True
            assert r.durable and r.storage == "firestore"
        except FailedPrecondition:
            accepted = False
        held.release.set()
        result = outcome(end)
    assert not isinstance(result, Exception), result
    doc = ender.firestore.get_session(sid)
    if accepted:
        assert final_contents(ender, sid) == ["q1", "a1", "during the end"]
        assert result.message_count == doc["message_count"] == 3
    assert pending_docs(ender, sid) == []
    # the other order: after the end, the outage path refuses
    with pytest.raises(FailedPrecondition):
        outage.add_message(sid, "user", "after the end", user_id=uid)


def test_end_whose_commit_reply_was_lost_does_not_reopen(redis_server, firestore_emulator, uid):
    from google.api_core.exceptions import DeadlineExceeded
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    client = firestore.Client(project="demo-chat-memory", credentials=AnonymousCredentials())
    lose_reply = threading.Event()
    real_commit = client._firestore_api.commit

    def commit(request=None, **kw):
        out = real_commit(request=request, **kw)
        if lose_reply.is_set():
            lose_reply.clear()
            raise DeadlineExceeded("the commit landed; its reply did not")
        return out

    client._firestore_api.commit = commit
    m = make_manager(redis_server.url, fs_client=client)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "q1", user_id=uid)
    m.add_message(sid, "assistant", "a1", user_id=uid)
    lose_reply.set()
    try:
        m.end_session_with_analytics(sid, user_id=uid)
    except Unavailable:
        pass
    try:
        m.add_message(sid, "user", "after the lost reply", user_id=uid)
        accepted = True
    except FailedPrecondition:
        accepted = False
    poll(lambda: m.firestore.breaker.state() != "open", "the Firestore breaker's cool-down")
    assert m.firestore.get_session(sid)["status"] == "ended"
    final = m.end_session_with_analytics(sid, user_id=uid)
    if accepted:
        assert "after the lost reply" in final_contents(m, sid)
    assert final.message_count == m.firestore.get_session(sid)["message_count"]


def test_concurrent_ends_share_one_attempt_and_never_reopen(redis_server, firestore_emulator, uid):
    """Three instances end one session at once while the first holds its snapshot; the
    transaction of one of them gives up (under contention the emulator aborts transactions
    on one document; here its commit fails outright, so the test does not depend on the
    emulator's lock timing). Each end answers the one committed result; nothing accepted
    meanwhile is lost."""
    from google.api_core.exceptions import ServiceUnavailable
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    contended = firestore.Client(project="demo-chat-memory", credentials=AnonymousCredentials())

    def commit_fails(request=None, **kw):
        raise ServiceUnavailable("the transaction gave up")

    contended._firestore_api.commit = commit_fails
    held = HeldSummarizer()
    a = make_manager(redis_server.url)
    a.summaries.summarizer = held
    b = make_manager(redis_server.url, fs_client=contended)
    b.summaries.summarizer = held
    c = make_manager(redis_server.url)
    c.summaries.summarizer = held
    d = make_manager(redis_server.url)
    sid = a.create_session({}, user_id=uid).session_id
    for i in range(3):
        a.add_message(sid, "user", f"q{i}", user_id=uid)
        a.add_message(sid, "assistant", f"a{i}", {"sources": ["kb_race"]}, user_id=uid)
    attempts = {"b": 0, "c": 0}

    def counted(name: str, m: Any) -> None:
        real = m.redis.begin_end

        def begin_end(*args: Any, **kw: Any) -> Any:
            out = real(*args, **kw)
            attempts[name] += 1
            return out

        m.redis.begin_end = begin_end

    counted("b", b)
    counted("c", c)
    held.armed = True
    with ThreadPoolExecutor(3) as ex:
        fa = ex.submit(a.end_session_with_analytics, sid, user_id=uid)
        assert held.entered.wait(WAIT_S)
        fb = ex.submit(b.end_session_with_analytics, sid, user_id=uid)
        fc = ex.submit(c.end_session_with_analytics, sid, user_id=uid)
        # until both are finished, or both met the first end's snapshot more than once
        poll(lambda: (fb.done() or attempts["b"] >= 2) and (fc.done() or attempts["c"] >= 2), "b and c")
        try:
            d.add_message(sid, "user", "while ending", user_id=uid)
            accepted = True
        except FailedPrecondition:
            accepted = False
        held.release.set()
        results = [outcome(f) for f in (fa, fb, fc)]
    assert [type(r).__name__ for r in results] == ["EndResult"] * 3, results
    doc = a.firestore.get_session(sid)
    answers = [r.model_dump(exclude={"already_ended"}) for r in results]
    assert answers == [answers[0]] * 3
    assert (answers[0]["message_count"], answers[0]["queries_recorded"]) == (doc["message_count"], 3)
    if accepted:
        assert "while ending" in final_contents(a, sid)
    assert held.calls == 1  # one attempt summarized and wrote; the others took its result


def test_merge_and_summary_store_after_the_snapshot_are_refused(redis_server, uid):
    m = make_manager(redis_server.url, firestore=False)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "one", user_id=uid)
    snap = m.redis.begin_end(sid, uid)
    assert snap.status == "ok"
    late = StoredMessage(0, "mid-late", "user", "merged late", time.time(), None)
    assert m.redis.import_messages(sid, [late]).added < 0
    assert not m.redis.store_summary(sid, {"text": "late", "message_count": 1, "updated_at": 0.0})
    meta = m.redis.meta(sid)
    assert meta is not None and meta["seq"] == "1"


def _age(m: Any, sid: str, seconds: float) -> None:
    """Make the session look created and last used ``seconds`` ago (its keys' TTLs ran
    down that much too)."""
    then = time.time() - seconds
    m.firestore.db().collection("sessions").document(sid).update({"created_at": then, "last_active_at": then})
    r = m.redis.client()
    r.hset(m.redis.key_names.meta(sid), Meta.LAST_ACTIVE_AT, repr(then))
    for key in m.redis.keys(sid):
        if r.exists(key):
            r.expire(key, max(1, m.settings.session_ttl_s - int(seconds)))


def test_sweep_counts_reads_as_activity(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "a long read follows", user_id=uid)
    _age(m, sid, 2 * m.settings.session_idle_timeout_s)
    m.get_context_for_llm(sid, user_id=uid)  # the user is reading: in use
    sweep_idle_sessions(m, SessionScans(m.firestore.fs), m.stats)
    assert m.firestore.get_session(sid)["status"] == "active"


def test_sweep_rechecks_idleness_right_before_ending(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "hello", user_id=uid)
    _age(m, sid, 2 * m.settings.session_idle_timeout_s)
    real = m.last_activity

    def last_activity(s: str) -> float | None:
        seen = real(s)
        if s == sid:  # the user comes back between the sweep's look and its end
            m.add_message(sid, "user", "I am back", user_id=uid)
        return seen

    m.last_activity = last_activity
    counts = sweep_idle_sessions(m, SessionScans(m.firestore.fs), m.stats)
    assert m.firestore.get_session(sid)["status"] == "active"
    assert counts["active"] >= 1
    m.add_message(sid, "user", "still chatting", user_id=uid)


def test_sweep_ends_idle_sessions_in_parallel(redis_server, firestore_emulator, uid):
    held = HeldSummarizer(wait_for_second=True)
    m = make_manager(redis_server.url)
    sids = []
    for _ in range(6):
        sid = m.create_session({}, user_id=uid).session_id
        m.add_message(sid, "user", "anyone?", user_id=uid)
        _age(m, sid, 2 * m.settings.session_idle_timeout_s)
        sids.append(sid)
    m.summaries.summarizer = held
    held.armed = True
    counts = sweep_idle_sessions(m, SessionScans(m.firestore.fs), m.stats)
    assert held.second.is_set() and held.max_in_flight >= 2  # a second end ran while the first was held
    assert counts["ended"] >= len(sids)
    assert all(m.firestore.get_session(s)["status"] == "ended" for s in sids)


def test_end_taking_over_a_released_attempt_takes_in_outage_messages(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "q1", user_id=uid)
    m.add_message(sid, "assistant", "a1", user_id=uid)
    # an earlier end took its snapshot, then could not tell whether its write landed
    first = m.redis.begin_end(sid, uid)
    assert m.redis.abort_end(sid, first.token, reopen=False)
    outage = make_manager(None)  # Redis unreachable there: the document is still active
    assert outage.add_message(sid, "user", "q2 on the outage path", user_id=uid).storage == "firestore"
    result = m.end_session_with_analytics(sid, user_id=uid)
    assert final_contents(m, sid) == ["q1", "a1", "q2 on the outage path"]
    assert [x["seq"] for x in m.firestore.get_session(sid)["final_messages"]] == [1, 2, 3]
    assert result.message_count == 3


def test_end_of_a_session_redis_forgot_leaves_the_owner_its_answers(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "q1", user_id=uid)
    m.redis.client().delete(*m.redis.keys(sid))  # Redis forgot it (expiry, a restart)
    first = m.end_session_with_analytics(sid, user_id=uid)
    again = m.end_session_with_analytics(sid, user_id=uid)
    assert again.already_ended and again.message_count == first.message_count
    assert m.get_session(sid, user_id=uid).status == "ended"
    m.get_history(sid, user_id=uid)
