"""Per-session and per-user bounds against a real redis-server: bytes, ids, sessions."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from shared.errors import FailedPrecondition
from shared.store.base import AppendRequest, StoredMessage
from shared.store.redis.keys import Meta
from tests import harness
from tests.store.conftest import make_manager

KB = 1024
BIG = "x" * (30 * KB)


def _usage(r: redis.Redis, key: str) -> int:
    return int(r.memory_usage(key, samples=0) or 0)


def test_a_session_is_bounded_by_bytes_not_only_count(redis_server, uid):
    limit = 512 * KB
    m = make_manager(redis_server.url, firestore=False, analytics_buffer_max_bytes=limit)
    sid = m.create_session({}, user_id=uid).session_id
    r = redis.Redis.from_url(redis_server.url)
    answers, refused = 0, None
    for _ in range(40):  # 40 pairs of 30 KB query + 30 KB answer: far past 512 KB
        try:
            m.add_message(sid, "user", BIG, user_id=uid)
            m.add_message(sid, "assistant", BIG, user_id=uid)
            answers += 1
        except FailedPrecondition as exc:
            refused = exc
            break
    assert refused is not None, "the session took every message"
    assert "full" in refused.message and refused.http_status == 409
    assert answers > 3  # the bound is bytes, not a handful of answers
    assert _usage(r, m.redis.key_names.log(sid)) <= limit
    # what was accepted is still there for the end of the session
    snap = m.redis.begin_end(sid, uid)
    assert len(snap.queries) == answers and all(q.query == BIG for q in snap.queries)


def test_answers_per_session_are_bounded_by_count(redis_server, uid):
    m = make_manager(redis_server.url, firestore=False, analytics_buffer_max=10)
    sid = m.create_session({}, user_id=uid).session_id
    for i in range(10):
        m.add_message(sid, "user", f"q{i}", user_id=uid)
        m.add_message(sid, "assistant", f"a{i}", user_id=uid)
    m.add_message(sid, "user", "one more question", user_id=uid)
    with pytest.raises(FailedPrecondition):
        m.add_message(sid, "assistant", "an eleventh answer", user_id=uid)
    assert [q.response for q in m.redis.begin_end(sid, uid).queries] == [f"a{i}" for i in range(10)]


def test_the_summarizers_input_is_bounded_by_bytes(redis_server, uid):
    limit = 512 * KB
    # A summarizer that never ran: the claim at 40 hands it everything since the start.
    m = make_manager(redis_server.url, firestore=False, pending_max_bytes=limit, summary_interval=40)
    sid = m.create_session({}, user_id=uid).session_id
    for i in range(1, 40):
        m.add_message(sid, "user", f"{i} " + BIG, user_id=uid)
    msg = StoredMessage(0, "c-40", "user", "40 " + BIG, time.time(), None)
    res = m.redis.append(AppendRequest(sid, msg, uid, "c-40", time.time()))
    assert res.summary_due and res.unsummarized
    assert sum(len(x.to_json()) for x in res.unsummarized) <= limit
    assert res.unsummarized[-1].seq == 40  # the newest are kept
    assert 8 < len(res.unsummarized) < 40


def test_message_ids_are_remembered_for_the_whole_session(redis_server, uid):
    m = make_manager(redis_server.url, firestore=False)
    sid = m.create_session({}, user_id=uid).session_id
    r = redis.Redis.from_url(redis_server.url)
    for i in range(1, 251):
        m.add_message(sid, "user", f"m{i}", client_message_id=f"c-{i}", user_id=uid)
    assert len([f for f in r.hkeys(m.redis.key_names.meta(sid)) if f.startswith(Meta.MESSAGE_ID.encode())]) == 250
    # a retry of the first message, 249 messages later, is still recognised
    again = m.add_message(sid, "user", "m1", client_message_id="c-1", user_id=uid)
    assert (again.duplicate, again.seq) == (True, 1)
    assert m.add_message(sid, "user", "m251", client_message_id="c-251", user_id=uid).seq == 251


def test_active_sessions_per_user_are_capped_across_instances(redis_server, uid):
    a = make_manager(redis_server.url, firestore=False, max_active_sessions_per_user=3)
    b = make_manager(redis_server.url, firestore=False, max_active_sessions_per_user=3)
    sids = [a.create_session({}, user_id=uid).session_id, b.create_session({}, user_id=uid).session_id]
    sids.append(a.create_session({}, user_id=uid).session_id)
    with pytest.raises(FailedPrecondition) as exc:
        b.create_session({}, user_id=uid)
    assert exc.value.http_status == 409 and exc.value.code == "too_many_sessions"
    # another user is not affected
    a.create_session({}, user_id=uid + "-other")
    # an ended session frees its slot, whichever instance ended it
    # (the Redis side of an end, as the end path runs it after writing Firestore)
    assert b.redis.begin_end(sids[0], uid).status == "ok"
    b.redis.finish_end(sids[0], {"session_id": sids[0], "status": "ended"})
    sids[0] = a.create_session({}, user_id=uid).session_id
    # so does one whose keys expired
    redis.Redis.from_url(redis_server.url).delete(b.redis.key_names.meta(sids[1]))
    b.create_session({}, user_id=uid)
    with pytest.raises(FailedPrecondition):
        a.create_session({}, user_id=uid)


@pytest.fixture
def full_redis() -> Iterator[harness.RedisServer]:
    srv = harness.RedisServer(extra_args=["--maxmemory", "8mb", "--maxmemory-policy", "noeviction"]).start()
    yield srv
    srv.cleanup()


_FILL = """
local max = tonumber(string.match(redis.call('INFO', 'memory'), 'maxmemory:(%d+)'))
repeat
  redis.call('RPUSH', 'filler', ARGV[1])
until tonumber(string.match(redis.call('INFO', 'memory'), 'used_memory:(%d+)')) > max + 65536
"""


def _fill(r: redis.Redis) -> None:
    """Leave Redis just past maxmemory with unexpiring filler (a script runs to its end
    whatever the memory: it can cross the limit, commands after it are refused)."""
    r.eval(_FILL, 0, "f" * (4 * KB))
    with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
        r.set("probe", "x")


def test_full_redis_under_noeviction_keeps_accepting_and_ending_frees_memory(full_redis, firestore_emulator, uid):
    m = make_manager(full_redis.url)
    r = redis.Redis.from_url(full_redis.url)
    big = m.create_session({}, user_id=uid).session_id  # holds about 1 MB
    for i in range(12):
        m.add_message(big, "user", f"q{i} " + BIG, user_id=uid)
        m.add_message(big, "assistant", f"a{i} " + BIG, user_id=uid)
    other = m.create_session({}, user_id=uid).session_id
    m.add_message(other, "user", "before", user_id=uid)
    _fill(r)
    # Redis full is not an outage: the message goes to Firestore, the breaker stays closed
    res = m.add_message(other, "user", "while full", user_id=uid)
    assert (res.storage, res.durable, res.seq) == ("firestore", True, 2)
    assert m.redis.breaker.state() == "closed"
    # reads go on: from Redis, or as in an outage for a session Firestore holds messages of
    assert m.get_context_for_llm(big, user_id=uid).storage == "redis"
    ctx = m.get_context_for_llm(other, user_id=uid)
    assert ctx.storage == "firestore" and [x.content for x in ctx.messages][-1] == "while full"
    # ending frees memory, so it must work on a full Redis
    end = m.end_session_with_analytics(big, user_id=uid)
    assert (end.message_count, end.queries_recorded) == (24, 12)
    assert r.exists(*m.redis.keys(big)[1:]) == 0
    # with room again, the session whose message went to Firestore ends with all of it
    end = m.end_session_with_analytics(other, user_id=uid)
    assert end.message_count == 2
    assert [x.content for x in m.get_history(other, user_id=uid).messages] == ["before", "while full"]


@pytest.mark.parametrize("refuse_config", [False, True], ids=["config", "info"])
def test_a_policy_that_can_evict_session_keys_is_reported(refuse_config, caplog):
    # Memorystore's default; some managed Redis refuse CONFIG: INFO answers then.
    args = ["--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"]
    if refuse_config:
        args += ["--rename-command", "CONFIG", ""]
    srv = harness.RedisServer(extra_args=args).start()
    try:
        m = make_manager(srv.url, firestore=False)
        with caplog.at_level("WARNING", logger="chat_memory.redis"):
            ping = m.redis.ping()
        assert (ping["status"], ping["eviction_policy"], ping["evicts_session_keys"]) == ("up", "volatile-lru", True)
        assert any("noeviction" in r.getMessage() for r in caplog.records)
        assert m.health()["layers"]["redis"]["evicts_session_keys"] is True
    finally:
        srv.cleanup()


def test_noeviction_is_reported_as_safe(redis_server, caplog):
    m = make_manager(redis_server.url, firestore=False)
    with caplog.at_level("WARNING", logger="chat_memory.redis"):
        ping = m.redis.ping()
    assert (ping["eviction_policy"], ping["evicts_session_keys"]) == ("noeviction", False)
    assert not [r for r in caplog.records if "noeviction" in r.getMessage()]


def test_the_message_window_is_bounded_by_bytes_too(redis_server, uid):
    limit = 256 * KB
    m = make_manager(redis_server.url, firestore=False, window_max_bytes=limit)
    sid = m.create_session({}, user_id=uid).session_id
    r = redis.Redis.from_url(redis_server.url)
    for i in range(8):  # eight messages of 30 KB of control characters: 180 KB each in JSON
        m.add_message(sid, "user", f"{i}" + "\x01" * (30 * KB), user_id=uid)
    # the log holds at most the larger bound; the window read from it at most its own
    assert _usage(r, m.redis.key_names.log(sid)) <= m.settings.analytics_buffer_max_bytes
    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert ctx.messages and ctx.messages[-1].content.startswith("7")  # the newest are kept
    assert 1 <= len(ctx.messages) < 8
    assert sum(len(x.model_dump_json().encode()) for x in ctx.messages) <= limit


def test_a_cap_of_zero_is_no_cap(redis_server, uid):
    """MAX_ACTIVE_SESSIONS_PER_USER=0 (benchmarks: one user, thousands of sessions)."""
    m = make_manager(redis_server.url, firestore=False, max_active_sessions_per_user=0)
    assert len({m.create_session({}, user_id=uid).session_id for _ in range(25)}) == 25
