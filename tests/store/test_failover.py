"""Redis killed and restarted, Firestore down, both down: nothing accepted is lost."""

from __future__ import annotations

import time

import pytest

from shared.core.manager import SessionManager
from shared.errors import NotFound, StoreError, Unavailable
from shared.store.firestore.layer import FirestoreLayer
from shared.store.redis.layer import RedisLayer
from tests.store.conftest import dead_firestore_client, make_manager


def contents(msgs):
    return [m.content for m in msgs]


def test_redis_killed_mid_conversation_and_restarted(redis_server_persistent, firestore_emulator, uid):
    m = make_manager(redis_server_persistent.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "before 1", user_id=uid)
    m.add_message(sid, "assistant", "answer 1", {"sources": ["kb_a"]}, user_id=uid)

    redis_server_persistent.kill()
    during = [
        m.add_message(sid, *rc, user_id=uid)
        for rc in [("user", "during 1"), ("assistant", "answer 2", {"sources": ["kb_b"]}), ("user", "during 2")]
    ]
    assert {r.storage for r in during} == {"firestore"} and all(r.durable for r in during)
    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert ctx.storage == "firestore" and contents(ctx.messages) == ["during 1", "answer 2", "during 2"]

    redis_server_persistent.start()
    time.sleep(0.3)  # the breaker's cool-down in these tests is 0.2 s
    after = m.add_message(sid, "assistant", "answer 3", {"sources": ["kb_a"]}, user_id=uid)
    assert after.storage == "redis"
    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert ctx.storage == "redis"
    assert contents(ctx.messages) == ["before 1", "answer 1", "during 1", "answer 2", "during 2", "answer 3"]
    assert [x.seq for x in ctx.messages] == [1, 2, 3, 4, 5, 6]

    end = m.end_session_with_analytics(sid, user_id=uid)
    assert (end.message_count, end.queries_recorded) == (6, 3)
    queries = m.firestore.read_analytics(sid)
    assert [(q["query"], q["response"]) for q in queries] == [
        ("before 1", "answer 1"),
        ("during 1", "answer 2"),
        ("during 2", "answer 3"),
    ]


def test_both_down_memory_fallback_then_merged_back(redis_server_persistent, firestore_emulator, uid):
    m = make_manager(redis_server_persistent.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "one", user_id=uid)
    # Firestore "down": this instance's Firestore layer now talks to a dead port.
    live_fs = m.firestore
    m.firestore = type(live_fs)(m.settings, client=dead_firestore_client())
    m.firestore.settings = m.settings.model_copy(update={"firestore_timeout_s": 0.5})
    redis_server_persistent.kill()
    r = m.add_message(sid, "user", "two", user_id=uid)
    assert (r.storage, r.durable, r.seq) == ("memory", False, 2)
    r = m.add_message(sid, "assistant", "three", {"sources": ["kb_m"]}, user_id=uid)
    assert (r.storage, r.durable, r.seq) == ("memory", False, 3)
    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert ctx.storage == "memory" and ctx.durable is False and contents(ctx.messages) == ["two", "three"]
    # both come back
    m.firestore = live_fs
    redis_server_persistent.start()
    time.sleep(0.3)
    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert ctx.storage == "redis" and contents(ctx.messages) == ["one", "two", "three"]
    end = m.end_session_with_analytics(sid, user_id=uid)
    assert (end.message_count, end.queries_recorded) == (3, 1)


def test_memory_fallback_bounds_and_expiry(uid):
    now = [1000.0]
    m = make_manager(None, firestore=False)
    m.memory._clock = lambda: now[0]
    m._clock = lambda: now[0]
    s = m.create_session({}, user_id=uid)
    assert s.storage == "memory"
    for i in range(20):
        m.add_message(s.session_id, "user", f"m{i}", user_id=uid)
    with pytest.raises(Unavailable):  # full: refused, never dropping an accepted one
        m.add_message(s.session_id, "user", "m20", user_id=uid)
    h = m.get_history(s.session_id, user_id=uid)
    assert h.storage == "memory" and h.durable is False
    assert contents(h.messages) == [f"m{i}" for i in range(20)]
    now[0] += 1801  # 30 min of silence
    assert m.memory.clear_expired() == 1
    with pytest.raises(NotFound):
        m.get_history(s.session_id, user_id=uid)


def test_end_while_firestore_down_is_503_then_written_once(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "q", user_id=uid)
    m.add_message(sid, "assistant", "a", {"sources": ["kb_1"]}, user_id=uid)
    live_fs = m.firestore
    m.firestore = type(live_fs)(
        m.settings.model_copy(update={"firestore_timeout_s": 0.5}), client=dead_firestore_client()
    )
    with pytest.raises(Unavailable):
        m.end_session_with_analytics(sid, user_id=uid)
    # the conversation goes on while Firestore is down
    assert m.add_message(sid, "user", "still here", user_id=uid).storage == "redis"
    m.firestore = live_fs
    first = m.end_session_with_analytics(sid, user_id=uid)
    again = m.end_session_with_analytics(sid, user_id=uid)
    assert (first.queries_recorded, first.message_count, first.already_ended) == (1, 3, False)
    assert again.already_ended and again.queries_recorded == 1
    assert len(m.firestore.read_analytics(sid)) == 1


def test_circuit_breaker_bounds_latency_while_redis_is_down(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url, redis_breaker_cooldown_s=5.0)
    sid = m.create_session({}, user_id=uid).session_id
    redis_server.kill()
    m.add_message(sid, "user", "first pays the connect failure", user_id=uid)
    for _ in range(10):
        m.get_context_for_llm(sid, user_id=uid)
    # no Redis connect attempt while open: the breaker, not the socket, answers
    assert m.redis.breaker.state() == "open" and m.redis.breaker.opened_count == 1
    assert m.redis.breaker.failures == 1


def test_another_instance_reads_outage_messages_first_after_recovery(redis_server_persistent, firestore_emulator, uid):
    """The emulator (and Cloud Functions) run each function in its own instances: the one
    that accepted messages in Firestore is not the one that serves the next read."""
    writer = make_manager(redis_server_persistent.url)
    reader = make_manager(redis_server_persistent.url)
    sid = writer.create_session({}, user_id=uid).session_id
    writer.add_message(sid, "user", "before", user_id=uid)
    assert contents(reader.get_context_for_llm(sid, user_id=uid).messages) == ["before"]
    redis_server_persistent.kill()
    writer.add_message(sid, "user", "during", user_id=uid)
    assert reader.get_context_for_llm(sid, user_id=uid).storage == "firestore"
    redis_server_persistent.start()
    time.sleep(0.3)
    ctx = reader.get_context_for_llm(sid, user_id=uid)  # the reader goes first
    assert ctx.storage == "redis" and contents(ctx.messages) == ["before", "during"]
    # and the writer's next append continues after the merged messages
    assert writer.add_message(sid, "user", "after", user_id=uid).seq == 3
    assert contents(reader.get_history(sid, user_id=uid).messages) == ["before", "during", "after"]


def test_reader_without_traffic_during_the_outage_still_merges(redis_server_persistent, firestore_emulator, uid):
    """Its breaker never opened; only its pooled connection, re-established after the
    restart, tells it that Redis was away."""
    writer = make_manager(redis_server_persistent.url)
    reader = make_manager(redis_server_persistent.url)
    sid = writer.create_session({}, user_id=uid).session_id
    writer.add_message(sid, "user", "before", user_id=uid)
    assert contents(reader.get_context_for_llm(sid, user_id=uid).messages) == ["before"]  # pooled conn
    redis_server_persistent.kill()
    assert writer.add_message(sid, "assistant", "during", user_id=uid).storage == "firestore"
    redis_server_persistent.start()
    ctx = reader.get_context_for_llm(sid, user_id=uid)
    assert reader.redis.breaker.opened_count == 0  # it never saw a failure
    assert ctx.storage == "redis" and contents(ctx.messages) == ["before", "during"]
    assert [m.seq for m in ctx.messages] == [1, 2]


def test_retried_append_after_a_lost_reply_is_stored_once(redis_server_persistent, firestore_emulator, uid):
    """A request retried with the same message id (as redis-py does after a timeout, or a
    client with client_message_id) is stored once, on Redis and across layers."""
    m = make_manager(redis_server_persistent.url)
    sid = m.create_session({}, user_id=uid).session_id
    first = m.add_message(sid, "user", "once", client_message_id="cm-1", user_id=uid)
    redis_server_persistent.kill()
    # Redis went away after answering: the client retries, this time Firestore takes it
    again = m.add_message(sid, "user", "once", client_message_id="cm-1", user_id=uid)
    assert again.storage == "firestore"
    redis_server_persistent.start()
    time.sleep(0.3)
    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert contents(ctx.messages) == ["once"] and first.seq == 1
    end = m.end_session_with_analytics(sid, user_id=uid)
    assert end.message_count == 1


def test_unknown_session_is_404_not_503_while_redis_is_down(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    redis_server.kill()
    with pytest.raises(NotFound):
        m.get_context_for_llm("e" * 32, user_id=uid)
    m.firestore = type(m.firestore)(
        m.settings.model_copy(update={"firestore_timeout_s": 0.5}), client=dead_firestore_client()
    )
    with pytest.raises(Unavailable):  # neither store can say: honest 503
        m.get_context_for_llm("e" * 32, user_id=uid)


def test_end_while_redis_is_down_is_503_and_loses_nothing(redis_server_persistent, firestore_emulator, uid):
    m = make_manager(redis_server_persistent.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "q1", user_id=uid)
    m.add_message(sid, "assistant", "a1", {"sources": ["kb_1"]}, user_id=uid)
    redis_server_persistent.kill()
    m.add_message(sid, "user", "q2", user_id=uid)
    m.add_message(sid, "assistant", "a2", user_id=uid)
    with pytest.raises(Unavailable):
        m.end_session_with_analytics(sid, user_id=uid)
    assert m.firestore.get_session(sid)["status"] == "active"
    redis_server_persistent.start()
    time.sleep(0.3)
    end = m.end_session_with_analytics(sid, user_id=uid)
    assert (end.message_count, end.queries_recorded) == (4, 2)
    assert [(q["query"], q["response"]) for q in m.firestore.read_analytics(sid)] == [("q1", "a1"), ("q2", "a2")]


def test_messages_written_elsewhere_just_after_recovery_are_read(redis_server_persistent, firestore_emulator, uid):
    """The reader sees Redis come back and scans once; a writer still inside its longer
    breaker cool-down then accepts one more message in Firestore. The reader's next read,
    within its recovery window, still merges it."""
    reader = make_manager(redis_server_persistent.url)  # cool-down 0.2 s
    writer = make_manager(redis_server_persistent.url, redis_breaker_cooldown_s=30.0)
    sid = writer.create_session({}, user_id=uid).session_id
    writer.add_message(sid, "user", "before", user_id=uid)
    redis_server_persistent.kill()
    assert writer.add_message(sid, "assistant", "during", user_id=uid).storage == "firestore"
    assert reader.get_context_for_llm(sid, user_id=uid).storage == "firestore"
    redis_server_persistent.start()
    time.sleep(0.3)
    assert contents(reader.get_context_for_llm(sid, user_id=uid).messages) == ["before", "during"]
    # the writer's breaker is still open: this one goes to Firestore after the reader's scan
    assert writer.add_message(sid, "user", "late", user_id=uid).storage == "firestore"
    ctx = reader.get_context_for_llm(sid, user_id=uid)
    assert ctx.storage == "redis" and contents(ctx.messages) == ["before", "during", "late"]
    assert [m.seq for m in ctx.messages] == [1, 2, 3]


def test_probe_meeting_a_reestablished_connection_closes_the_breaker(redis_server_persistent, uid):
    """The breaker's half-open probe may be a script call whose pooled socket died with the
    restart: that answer proves Redis is up, so the breaker closes instead of waiting for a
    report that never comes (which kept an instance off Redis in the reliability run)."""
    m = make_manager(redis_server_persistent.url, firestore=False)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "before", user_id=uid)
    redis_server_persistent.kill()
    with pytest.raises(StoreError):
        m.redis.read(sid, uid, 8)  # first failure: forgiven (maybe one dead socket)
    with pytest.raises(StoreError):
        m.redis.read(sid, uid, 8)  # second: the breaker opens
    assert m.redis.breaker.state() == "open"
    redis_server_persistent.start()
    time.sleep(0.3)  # past the 0.2 s cool-down: the next call is the probe
    with pytest.raises(StoreError) as err:
        m.redis.read(sid, uid, 8)  # the probe meets the re-established connection
    assert err.value.retryable
    assert m.redis.breaker.state() == "closed" and m.redis.breaker.allow()
    assert m.redis.read(sid, uid, 8).status == "ok"


def test_new_instance_after_a_restart_merges_before_appending(redis_server_persistent, firestore_emulator, uid):
    """An instance started after Redis came back never had a connection to re-establish and
    never saw its breaker open: only Redis' own run (new, and young) tells it that Redis was
    away. Without that, its append was numbered before the outage's messages (the one
    reliability failure left open in the last round)."""
    writer = make_manager(redis_server_persistent.url)
    sid = writer.create_session({}, user_id=uid).session_id
    writer.add_message(sid, "user", "before", user_id=uid)
    redis_server_persistent.kill()
    assert writer.add_message(sid, "assistant", "during", user_id=uid).storage == "firestore"
    redis_server_persistent.start()
    fresh = make_manager(redis_server_persistent.url)  # a new instance: no pooled connection yet
    r = fresh.add_message(sid, "user", "after", user_id=uid)
    assert (r.storage, r.seq) == ("redis", 3)
    assert contents(fresh.get_history(sid, user_id=uid).messages) == ["before", "during", "after"]


def test_new_instance_long_after_a_restart_does_not_scan(redis_server_persistent, firestore_emulator, uid):
    """Redis' age, not the instance's, decides: a cold start against a Redis that has run
    longer than the horizon pays no Firestore scan."""
    m = make_manager(redis_server_persistent.url, redis_restart_horizon_s=0.0)
    sid = m.create_session({}, user_id=uid).session_id
    assert m.redis.breaker.recoveries == 0
    m.add_message(sid, "user", "one", user_id=uid)
    assert m.redis.breaker.recoveries == 0


def test_a_new_instance_meeting_a_young_redis_serves_from_it(redis_server, firestore_emulator, uid):
    """Meeting a Redis that just started is news, not a failure: the first create, claim
    and start-up policy check of a new instance are served by Redis, its breaker closed."""
    m = make_manager(redis_server.url)
    m.redis.eviction_policy()  # what a new instance does first, in the background
    assert m.redis.breaker.state() == "closed" and m.redis.breaker.opened_count == 0
    info = m.create_session({}, user_id=uid)
    assert info.storage == "redis"
    assert m.add_message(info.session_id, "user", "hi", user_id=uid).storage == "redis"
    assert m.redis.breaker.recoveries == 1  # the young run, reported once


def _firestore_down(m):
    live = m.firestore
    m.firestore = type(live)(m.settings, client=dead_firestore_client())
    m.firestore.settings = m.settings.model_copy(update={"firestore_timeout_s": 0.5})
    return live


def test_memory_held_messages_are_merged_when_redis_returns_though_firestore_is_still_down(
    redis_server_persistent, firestore_emulator, uid
):
    """Issue 24, item 8: this instance's memory is the least durable layer; once Redis is
    back it takes what memory held, without waiting for Firestore."""
    m = make_manager(redis_server_persistent.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "one", user_id=uid)
    _firestore_down(m)
    redis_server_persistent.kill()
    assert m.add_message(sid, "user", "two", user_id=uid).storage == "memory"
    assert m.add_message(sid, "user", "three", user_id=uid).storage == "memory"
    redis_server_persistent.start()
    time.sleep(0.3)
    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert ctx.storage == "redis" and contents(ctx.messages) == ["one", "two", "three"]
    assert [x.seq for x in ctx.messages] == [1, 2, 3]
    assert m.memory.snapshot(sid) is None or m.memory.snapshot(sid)[0] == []


def test_messages_held_by_memory_then_by_firestore_merge_in_the_order_they_were_accepted(
    redis_server_persistent, firestore_emulator, uid
):
    """Issue 24, item 8: both down (memory takes two, three), Firestore back first (it takes
    four), then Redis: the merge keeps acceptance order, not layer order."""
    m = make_manager(redis_server_persistent.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "one", user_id=uid)
    live = _firestore_down(m)
    redis_server_persistent.kill()
    assert m.add_message(sid, "user", "two", user_id=uid).storage == "memory"
    assert m.add_message(sid, "user", "three", user_id=uid).storage == "memory"
    m.firestore = live
    assert m.add_message(sid, "user", "four", user_id=uid).storage == "firestore"
    redis_server_persistent.start()
    time.sleep(0.3)
    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert ctx.storage == "redis" and contents(ctx.messages) == ["one", "two", "three", "four"]
    end = m.end_session_with_analytics(sid, user_id=uid)
    assert end.message_count == 4


def test_an_outage_append_committed_after_the_recovery_window_is_merged_before_the_next(
    redis_server_persistent, firestore_emulator, uid
):
    """Issue 24, item 19: the interleaving behind a message accepted (201) and missing from
    the window. Instance b sees Redis come back and scans; instance c, its breaker still
    open, commits an outage append only after b's recovery window has passed (a loaded
    machine: the commit is seconds late); the next append lands on b. Nothing accepted may
    be missing or out of order."""
    a = make_manager(redis_server_persistent.url)
    b = make_manager(redis_server_persistent.url)
    c = make_manager(redis_server_persistent.url, redis_breaker_cooldown_s=60.0)
    sid = a.create_session({}, user_id=uid).session_id
    other = a.create_session({}, user_id=uid).session_id
    for i in (1, 2, 3):
        a.add_message(sid, "user", f"m{i}", user_id=uid)
    redis_server_persistent.kill()
    # b and c both meet the outage; c's breaker stays open past Redis' return
    assert b.add_message(other, "user", "b in the outage", user_id=uid).storage == "firestore"
    assert c.add_message(other, "user", "c in the outage", user_id=uid).storage == "firestore"
    redis_server_persistent.start()
    time.sleep(0.3)
    assert b.get_context_for_llm(other, user_id=uid).storage == "redis"  # b is back and has scanned
    # c's outage append commits late, after b's window is over
    assert c.add_message(sid, "user", "m4", user_id=uid).storage == "firestore"
    b.recovery._recovered_at = time.monotonic() - 3600  # b's window is long past
    r = b.add_message(sid, "user", "m5", user_id=uid)
    ctx = b.get_context_for_llm(sid, user_id=uid)
    assert contents(ctx.messages) == ["m1", "m2", "m3", "m4", "m5"], contents(ctx.messages)
    assert r.seq == 5 and [x.seq for x in ctx.messages] == [1, 2, 3, 4, 5]


def test_a_young_redis_met_before_the_manager_exists_still_merges_first(
    redis_server_persistent, firestore_emulator, uid
):
    """A new instance's first Redis call may be the rate limiter's, at the edge, before the
    session manager (and its recovery, which listens to the breaker) is built: the young run
    it meets is reported to a breaker nobody listens to yet. The recovery built next must
    still learn of it, or its append is numbered before the outage's messages (the
    reliability run's "accepted message missing from the window", seen on a busy machine)."""
    from shared.store.breaker import CircuitBreaker
    from shared.store.redis import client as redis_client

    writer = make_manager(redis_server_persistent.url)
    sid = writer.create_session({}, user_id=uid).session_id
    writer.add_message(sid, "user", "before", user_id=uid)
    redis_server_persistent.kill()
    assert writer.add_message(sid, "assistant", "during", user_id=uid).storage == "firestore"
    redis_server_persistent.start()

    # A new instance, wired as shared/instance.py wires one: one client, one breaker.
    settings = writer.settings
    breaker = CircuitBreaker(settings.redis_breaker_cooldown_s)
    client = redis_client.build(settings, on_restart=breaker.note_recovery)
    redis_client.call(client, breaker, "rate limit", lambda c: c.ping())  # the edge, first
    fresh = SessionManager(
        settings,
        redis=RedisLayer(settings, client=client, breaker=breaker),
        firestore=FirestoreLayer(settings),
    )
    r = fresh.add_message(sid, "user", "after", user_id=uid)
    assert (r.storage, r.seq) == ("redis", 3)
    assert contents(fresh.get_history(sid, user_id=uid).messages) == ["before", "during", "after"]
