"""A full Redis (``noeviction`` at ``maxmemory``, the documented policy) is not an outage:
it still answers reads and deletes but refuses to take more data. An end must not depend on
Redis taking more (it ends from what Redis holds plus what Firestore took meanwhile), the
per-user session cap must not silently lift, and health must say Redis is full. Real
redis-servers started here, the Firestore emulator; no mocks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from shared import instance
from shared.edge import api
from shared.edge.http import Call
from shared.errors import FailedPrecondition, Unavailable
from shared.features.sweep import sweep_idle_sessions
from shared.store.firestore.scans import SessionScans
from shared.store.redis.keys import Meta
from tests import harness
from tests.store.conftest import make_manager
from tests.store.test_end_races import WAIT_S, HeldSummarizer, outcome

# A script runs to its end whatever the memory, so it can leave Redis past maxmemory; every
# write after it is refused (OOM), reads and deletes still answer.
_FILL = """
local max = tonumber(string.match(redis.call('INFO', 'memory'), 'maxmemory:(%d+)'))
repeat
  redis.call('RPUSH', 'filler', ARGV[1])
until tonumber(string.match(redis.call('INFO', 'memory'), 'used_memory:(%d+)')) > max + 65536
"""


@pytest.fixture
def full_redis() -> Iterator[harness.RedisServer]:
    srv = harness.RedisServer(extra_args=["--maxmemory", "8mb", "--maxmemory-policy", "noeviction"]).start()
    yield srv
    srv.cleanup()


def fill(url: str) -> None:
    r = redis.Redis.from_url(url)
    r.eval(_FILL, 0, "f" * 4096)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        r.set("probe", "x")


def final_messages(m: Any, sid: str) -> list[tuple[int, str]]:
    return [(x["seq"], x["content"]) for x in m.firestore.get_session(sid)["final_messages"]]


def pending_docs(m: Any, sid: str) -> list[str]:
    return [d.id for d in m.firestore.db().collection("sessions").document(sid).collection("pending").stream()]


def test_end_on_a_full_redis_takes_in_what_firestore_took_meanwhile(full_redis, firestore_emulator, uid):
    m = make_manager(full_redis.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "q1", user_id=uid)
    m.add_message(sid, "assistant", "a1", {"sources": ["kb_a"]}, user_id=uid)
    fill(full_redis.url)
    # Another instance, which never saw the session: Redis refuses its appends (full), the
    # outage path numbers them from what Firestore knows (1, 2), not after Redis' 2.
    other = make_manager(full_redis.url)
    r = other.add_message(sid, "user", "q2 while full", user_id=uid)
    assert (r.storage, r.durable) == ("firestore", True)
    other.add_message(sid, "assistant", "a2 while full", {"sources": ["kb_b"]}, user_id=uid)
    assert other.redis.breaker.state() == "closed"  # full is not down

    end = m.end_session_with_analytics(sid, user_id=uid)
    assert (end.message_count, end.queries_recorded, end.already_ended) == (4, 2, False)
    assert final_messages(m, sid) == [(1, "q1"), (2, "a1"), (3, "q2 while full"), (4, "a2 while full")]
    queries = m.firestore.read_analytics(sid)
    assert [(q["query"], q["response"], q["sources"]) for q in queries] == [
        ("q1", "a1", ["kb_a"]),
        ("q2 while full", "a2 while full", ["kb_b"]),
    ]
    assert pending_docs(m, sid) == []
    # the session's caches are gone from Redis (memory freed), its ended state stays
    cli = redis.Redis.from_url(full_redis.url, decode_responses=True)
    assert cli.exists(*m.redis.keys(sid)[1:]) == 0
    assert cli.hget(m.redis.key_names.meta(sid), Meta.STATUS) == "ended"
    # a retried end, from either instance, answers the one result; appends are refused
    for who in (m, other):
        again = who.end_session_with_analytics(sid, user_id=uid)
        assert again.already_ended and (again.message_count, again.queries_recorded) == (4, 2)
    assert len(m.firestore.read_analytics(sid)) == 2
    for who in (m, other):
        with pytest.raises(FailedPrecondition):
            who.add_message(sid, "user", "after the end", user_id=uid)
    assert m.get_session(sid, user_id=uid).status == "ended"
    assert [x.content for x in other.get_history(sid, user_id=uid).messages] == [
        "q1",
        "a1",
        "q2 while full",
        "a2 while full",
    ]


def test_an_append_during_an_end_on_a_full_redis_is_taken_in_or_refused(full_redis, firestore_emulator, uid):
    held = HeldSummarizer()
    ender = make_manager(full_redis.url)
    ender.summaries.summarizer = held
    sid = ender.create_session({}, user_id=uid).session_id
    ender.add_message(sid, "user", "q1", user_id=uid)
    ender.add_message(sid, "assistant", "a1", user_id=uid)
    fill(full_redis.url)
    other = make_manager(full_redis.url)
    assert other.add_message(sid, "user", "q2 while full", user_id=uid).storage == "firestore"
    held.armed = True
    with ThreadPoolExecutor(1) as ex:
        end = ex.submit(ender.end_session_with_analytics, sid, user_id=uid)
        assert held.entered.wait(WAIT_S)  # the end holds its snapshot, not yet written
        try:
            r = other.add_message(sid, "user", "q3 during the end", user_id=uid)
            accepted = True
            assert (r.storage, r.durable) == ("firestore", True)
        except FailedPrecondition:
            accepted = False
        held.release.set()
        result = outcome(end)
    assert not isinstance(result, Exception), result
    if accepted:
        assert final_messages(ender, sid) == [(1, "q1"), (2, "a1"), (3, "q2 while full"), (4, "q3 during the end")]
        assert result.message_count == 4
    else:
        assert result.message_count == 3
    assert pending_docs(ender, sid) == []
    with pytest.raises(FailedPrecondition):
        other.add_message(sid, "user", "after the end", user_id=uid)


def test_the_sweep_ends_an_idle_session_on_a_full_redis(full_redis, firestore_emulator, uid):
    m = make_manager(full_redis.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "q1", user_id=uid)
    then = time.time() - 2 * m.settings.session_idle_timeout_s
    m.redis.client().hset(m.redis.key_names.meta(sid), Meta.LAST_ACTIVE_AT, repr(then))
    fill(full_redis.url)
    assert make_manager(full_redis.url).add_message(sid, "user", "q2 while full", user_id=uid).storage == "firestore"
    doc = m.firestore.db().collection("sessions").document(sid)
    doc.update({"created_at": then, "last_active_at": then})  # idle past the timeout
    counts = sweep_idle_sessions(m, SessionScans(m.firestore.fs), m.stats)
    assert counts["ended"] >= 1
    after = m.firestore.get_session(sid)
    assert (after["status"], after["end_reason"], after["message_count"]) == ("ended", "timeout", 2)
    assert final_messages(m, sid) == [(1, "q1"), (2, "q2 while full")]


def test_the_session_cap_fails_closed_while_redis_is_full(full_redis, firestore_emulator, uid):
    m = make_manager(full_redis.url, max_active_sessions_per_user=2)
    m.create_session({}, user_id=uid)
    fill(full_redis.url)
    # Redis answers but cannot count the new session: refused, not created uncounted
    for _ in range(3):
        with pytest.raises(Unavailable, match="full"):
            m.create_session({}, user_id=uid)
    # with no cap configured, nothing to count: creation goes on (served from Firestore)
    free = make_manager(full_redis.url, max_active_sessions_per_user=0)
    assert free.create_session({}, user_id=uid).storage == "firestore"


def test_health_says_redis_is_full(full_redis, firestore_emulator):
    m = make_manager(full_redis.url)
    assert m.health()["status"] == "ok"
    fill(full_redis.url)
    report = m.health()
    assert report["status"] == "degraded"
    assert report["layers"]["redis"]["status"] == "full"
    assert report["layers"]["redis"]["breaker"] == "closed"
    # the public answer: words and numbers only
    instance.get_instance().use(m)
    api.reset_health()
    status, body = api.health(Call(uid=None, body={}, args={}))
    assert body["status"] == "degraded" and body["layers"]["redis"]["status"] == "full"
    # room again: up
    redis.Redis.from_url(full_redis.url).delete("filler")
    assert m.health()["layers"]["redis"]["status"] == "up"
