"""The Redis layer against a real redis-server: windows, TTLs, round trips, summaries."""

from __future__ import annotations

import pytest
import redis

from shared.core.manager import SessionManager
from shared.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from shared.settings import Settings
from shared.store.firestore.layer import FirestoreLayer
from shared.store.redis.layer import RedisLayer
from tests.store.conftest import make_manager


class CountingConnection(redis.Connection):
    """Counts what goes over the socket: one send = one round trip."""

    sends = 0

    def send_packed_command(self, command, check_health=True):
        type(self).sends += 1
        return super().send_packed_command(command, check_health)


def counting_manager(url: str) -> tuple[SessionManager, type[CountingConnection]]:
    conn_cls = type("C", (CountingConnection,), {"sends": 0})
    pool = redis.ConnectionPool.from_url(url, connection_class=conn_cls, decode_responses=True, health_check_interval=0)
    client = redis.Redis(connection_pool=pool)
    s = Settings(redis_url=url, firestore_enabled=False)
    return SessionManager(s, redis=RedisLayer(s, client=client), firestore=FirestoreLayer(s)), conn_cls


def test_one_round_trip_per_append_and_per_read(redis_server, uid):
    m, conn = counting_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    # first use of each script loads it (EVALSHA -> NOSCRIPT -> SCRIPT LOAD -> EVALSHA)
    for _ in range(5):
        m.add_message(sid, "user", "warm up")
    m.get_context_for_llm(sid, user_id=uid)
    for i in range(12):
        conn.sends = 0
        r = m.add_message(sid, "user" if i % 2 else "assistant", f"message {i}", user_id=uid)
        # every 5th append also stores the rolling summary: one more round trip
        assert conn.sends == (2 if r.summary_updated else 1), (i, conn.sends)
        conn.sends = 0
        m.get_context_for_llm(sid, user_id=uid)
        assert conn.sends == 1
        conn.sends = 0
        m.get_history(sid, user_id=uid)
        assert conn.sends == 1


def test_window_ttl_and_sliding_expiry(redis_server, uid):
    m = make_manager(redis_server.url, firestore=False)
    sid = m.create_session({"platform": "web"}, user_id=uid).session_id
    for i in range(1, 13):
        m.add_message(sid, "user", f"m{i}")
    ctx = m.get_context_for_llm(sid)
    assert [x.content for x in ctx.messages] == [f"m{i}" for i in range(5, 13)]  # the last 8
    assert [x.seq for x in ctx.messages] == list(range(5, 13))
    assert len(m.get_context_for_llm(sid, 3).messages) == 3
    r = redis.Redis.from_url(redis_server.url)
    keys = [k.decode() for k in r.keys(f"*{{{sid}}}*")]
    assert sorted(keys) == sorted(m.redis.keys(sid))  # the session is these keys, no more
    assert keys and all(7100 < r.ttl(k) <= 7200 for k in keys), {k: r.ttl(k) for k in keys}
    assert r.llen(m.redis.key_names.log(sid)) == 12  # every message once: the window is its tail
    # a read just after a write finds the TTL full: it writes nothing
    r.config_resetstat()
    m.get_context_for_llm(sid)
    calls = {k.removeprefix("cmdstat_") for k in r.info("commandstats")}
    assert not calls & {"hset", "expire"}, calls
    # reading slides the TTL back to 2 h
    for k in keys:
        r.expire(k, 100)
    m.get_context_for_llm(sid)
    assert all(r.ttl(k) > 7100 for k in keys)


def test_summary_every_five_messages_covers_exact_seq(redis_server, uid):
    m = make_manager(redis_server.url, firestore=False)
    sid = m.create_session({}, user_id=uid).session_id
    flags = [m.add_message(sid, "user", f"Message {i}. Tail.").summary_updated for i in range(1, 16)]
    assert [i for i, f in enumerate(flags, 1) if f] == [5, 10, 15]
    s = m.get_context_for_llm(sid).summary
    assert s is not None and s.message_count == 15
    assert "Message 15." in s.text and "Message 1." in s.text


def test_summary_failure_never_fails_append_and_next_claim_covers_the_gap(redis_server, uid):
    class Flaky:
        name = "flaky"
        calls = 0

        def summarize(self, previous, messages):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("model down")
            return "covered: " + ",".join(str(x.seq) for x in messages)

    s = Settings(redis_url=redis_server.url, firestore_enabled=False)
    m = SessionManager(s, redis=RedisLayer(s), firestore=FirestoreLayer(s), summarizer=Flaky())
    sid = m.create_session({}, user_id=uid).session_id
    results = [m.add_message(sid, "user", f"x{i}") for i in range(1, 11)]
    assert results[4].summary_updated is False  # the failed one: append still accepted
    assert results[9].summary_updated is True
    assert m.get_context_for_llm(sid).summary.text == "covered: " + ",".join(str(i) for i in range(1, 11))


def test_idempotent_append_with_client_message_id(redis_server, uid):
    m = make_manager(redis_server.url, firestore=False)
    sid = m.create_session({}, user_id=uid).session_id
    a = m.add_message(sid, "user", "hello", client_message_id="c-1", user_id=uid)
    b = m.add_message(sid, "user", "hello", client_message_id="c-1", user_id=uid)
    assert (a.seq, a.duplicate, b.seq, b.duplicate) == (1, False, 1, True)
    m.add_message(sid, "assistant", "hi", {"sources": ["kb_1"]}, client_message_id="c-2")
    m.add_message(sid, "assistant", "hi", {"sources": ["kb_1"]}, client_message_id="c-2")
    assert [x.content for x in m.get_history(sid).messages] == ["hello", "hi"]
    snap = m.redis.begin_end(sid, uid)
    assert len(snap.queries) == 1 and snap.queries[0].query == "hello"


def test_ownership_and_unknown_sessions(redis_server, uid):
    m = make_manager(redis_server.url, firestore=False)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "private")
    for call in (
        lambda: m.add_message(sid, "user", "intrude", user_id="mallory"),
        lambda: m.get_context_for_llm(sid, user_id="mallory"),
        lambda: m.get_history(sid, user_id="mallory"),
        lambda: m.get_session(sid, user_id="mallory"),
    ):
        with pytest.raises(PermissionDenied):  # another user never gets through
            call()
    assert [x.content for x in m.get_history(sid).messages] == ["private"]
    unknown = "f" * 32
    with pytest.raises(NotFound):  # Redis is up and does not know the session
        m.add_message(unknown, "user", "x", user_id=uid)


def test_bad_input_never_reaches_redis(redis_server, uid):
    m = make_manager(redis_server.url, firestore=False)
    sid = m.create_session({}, user_id=uid).session_id
    r = redis.Redis.from_url(redis_server.url)
    before = {k: r.type(k) for k in r.keys("*")}
    bad_ids = ["../../etc", "*", f"{sid}}}:meta", sid.upper(), sid + "x", "", "{" + sid[1:], "a" * 32 + "\x00"]
    for bad in bad_ids:
        for call in (
            lambda b=bad: m.add_message(b, "user", "x"),
            lambda b=bad: m.get_context_for_llm(b),
            lambda b=bad: m.get_history(b),
            lambda b=bad: m.end_session_with_analytics(b),
        ):
            with pytest.raises(InvalidArgument):
                call()
    for args in [("robot", "x"), ("user", ""), ("user", "x" * 40000), ("user", "ok", {"m": "x" * 9000})]:
        with pytest.raises(InvalidArgument):
            m.add_message(sid, *args)
    for kwargs in ({"max_messages": 0}, {"max_messages": 9}, {"token_budget": 0}, {"max_messages": True}):
        with pytest.raises(InvalidArgument):
            m.get_context_for_llm(sid, **kwargs)
    assert {k: r.type(k) for k in r.keys("*")} == before


def test_append_after_end_is_refused(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "bye")
    m.end_session_with_analytics(sid, user_id=uid)
    with pytest.raises(FailedPrecondition):
        m.add_message(sid, "user", "late", user_id=uid)
