"""Outages and merges never cost a message, a session or another user's data: memory-held
messages survive a Redis that returns empty, an unknown session id is never adopted while
the stores are down, a session created while Firestore was down gets its document, and a
session whose Redis keys are gone is ended as `expired` instead of restarting at 1."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.core.manager import SessionManager
from shared.errors import PermissionDenied, SessionExpired, Unavailable
from tests.store.conftest import dead_firestore_client, make_manager


def contents(msgs: Any) -> list[str]:
    return [m.content for m in msgs]


def firestore_down(m: SessionManager) -> Any:
    """Point this instance's Firestore layer at a dead port; returns the live one."""
    live = m.firestore
    m.firestore = type(live)(m.settings.model_copy(update={"firestore_timeout_s": 0.5}), client=dead_firestore_client())
    return live


def breaker_due(m: SessionManager, timeout: float = 10.0) -> None:
    """Wait until the instance's Redis breaker lets a probe through (a real state, polled)."""
    deadline = time.monotonic() + timeout
    while m.redis.breaker.state() == "open" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert m.redis.breaker.state() != "open"


def test_memory_held_messages_survive_a_redis_that_returns_empty(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    live = firestore_down(m)
    redis_server.kill()
    sid = m.create_session({}, user_id=uid).session_id  # both down: this instance's memory
    assert m.add_message(sid, "user", "one", user_id=uid).storage == "memory"
    assert m.add_message(sid, "assistant", "two", {"sources": ["kb_m"]}, user_id=uid).storage == "memory"
    m.firestore = live
    redis_server.start()  # no persistence: back empty
    breaker_due(m)
    r = m.add_message(sid, "user", "three", user_id=uid)
    assert (r.storage, r.seq) == ("redis", 3)
    h = m.get_history(sid, user_id=uid)
    assert contents(h.messages) == ["one", "two", "three"] and [x.seq for x in h.messages] == [1, 2, 3]
    end = m.end_session_with_analytics(sid, user_id=uid)
    assert (end.message_count, end.queries_recorded) == (3, 1)


def test_unknown_session_is_not_adopted_while_both_stores_are_down(redis_server_persistent, firestore_emulator, uid):
    """Another user's append to a session this instance knows nothing of, while neither
    store can say who owns it: 503, nothing kept, and the owner's session is untouched once
    the stores return (including its Firestore document, created after the outage)."""
    owner_side = make_manager(redis_server_persistent.url)
    live = firestore_down(owner_side)
    sid = owner_side.create_session({}, user_id=uid).session_id  # Redis only: no document yet
    owner_side.add_message(sid, "user", "mine", user_id=uid)
    owner_side.firestore = live

    other = make_manager(redis_server_persistent.url)
    other_live = firestore_down(other)
    redis_server_persistent.kill()
    with pytest.raises(Unavailable):
        other.add_message(sid, "user", "intruder 1", user_id="u-intruder")
    assert other.memory.state(sid) is None
    other.firestore = other_live  # Firestore back, Redis still down
    with pytest.raises(Unavailable):
        other.add_message(sid, "user", "intruder 2", user_id="u-intruder")
    assert other.firestore.get_session(sid) is None  # no document with the wrong owner

    redis_server_persistent.start()
    breaker_due(other)
    with pytest.raises(PermissionDenied):
        other.add_message(sid, "user", "intruder 3", user_id="u-intruder")
    assert owner_side.add_message(sid, "assistant", "still mine", user_id=uid).seq == 2
    assert contents(owner_side.get_history(sid, user_id=uid).messages) == ["mine", "still mine"]
    assert owner_side.firestore.get_session(sid)["owner"] == uid


def test_owner_known_to_the_instance_still_gets_memory_while_both_are_down(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "one", user_id=uid)
    firestore_down(m)
    redis_server.kill()
    r = m.add_message(sid, "user", "two", user_id=uid)
    assert (r.storage, r.durable) == ("memory", False)
    with pytest.raises(PermissionDenied):
        m.add_message(sid, "user", "not yours", user_id="u-someone-else")


def test_session_created_while_firestore_was_down_gets_its_document(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    live = firestore_down(m)
    s = m.create_session({"name": "Ada"}, user_id=uid)
    assert s.storage == "redis"
    m.add_message(s.session_id, "user", "while firestore is down", user_id=uid)
    m.firestore = live
    assert live.get_session(s.session_id) is None
    r = m.add_message(s.session_id, "assistant", "firestore is back", user_id=uid)
    assert (r.storage, r.seq) == ("redis", 2)
    doc = live.get_session(s.session_id)
    assert doc is not None and (doc["owner"], doc["status"], doc["created_at"]) == (uid, "active", s.created_at)
    assert doc["user_info"] == {"name": "Ada"}
    # written once: Redis now knows the document exists
    assert m.redis.meta(s.session_id)["fs_doc"] == "1"


def test_a_read_also_writes_the_missing_document(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    live = firestore_down(m)
    sid = m.create_session({}, user_id=uid).session_id
    m.firestore = live
    assert m.get_context_for_llm(sid, user_id=uid).storage == "redis"
    assert live.get_session(sid)["owner"] == uid


def test_session_whose_redis_keys_expired_is_ended_as_expired(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    for i in range(3):
        m.add_message(sid, "user", f"m{i}", user_id=uid)
    m.redis.client().delete(*m.redis.keys(sid))  # TTL ran out, or evicted
    with pytest.raises(SessionExpired):
        m.add_message(sid, "user", "after the expiry", user_id=uid)
    doc = m.firestore.get_session(sid)
    assert (doc["status"], doc["end_reason"]) == ("ended", "expired")
    with pytest.raises(SessionExpired):  # and stays so
        m.add_message(sid, "user", "again", user_id=uid)
    assert m.get_session(sid, user_id=uid).status == "ended"
    assert "after the expiry" not in contents(m.get_history(sid, user_id=uid).messages)


def test_expired_session_of_another_user_is_403_and_left_alone(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "m", user_id=uid)
    m.redis.client().delete(*m.redis.keys(sid))
    with pytest.raises(PermissionDenied):
        m.add_message(sid, "user", "x", user_id="u-someone-else")
    assert m.firestore.get_session(sid)["status"] == "active"


def test_end_by_another_user_of_an_expired_session_is_403_and_left_alone(redis_server, firestore_emulator, uid):
    """Ownership before any side effect: another user's end must not be what ends the
    owner's session as expired, with or without messages Firestore held in an outage."""
    m = make_manager(redis_server.url)
    for held in (False, True):
        sid = m.create_session({}, user_id=uid).session_id
        m.add_message(sid, "user", "m", user_id=uid)
        if held:  # a message Firestore took while Redis was down, waiting for the merge
            live = m.redis
            m.redis = type(live)(m.settings.model_copy(update={"redis_url": None}))
            assert m.add_message(sid, "user", "held", user_id=uid).storage == "firestore"
            m.redis = live
        m.redis.client().delete(*m.redis.keys(sid))
        with pytest.raises(PermissionDenied):
            m.end_session_with_analytics(sid, user_id="u-someone-else")
        assert m.firestore.get_session(sid)["status"] == "active", f"held={held}"


def test_redis_restarted_empty_ends_the_session_with_what_other_layers_hold(redis_server, firestore_emulator, uid):
    """Without persistence Redis loses the session's messages: the session is ended as
    `expired` with what Firestore accepted during the outage, not continued at a wrong number."""
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "lost with redis's memory", user_id=uid)
    redis_server.kill()
    m.add_message(sid, "user", "kept in firestore", user_id=uid)
    m.add_message(sid, "assistant", "answer kept", {"sources": ["kb_k"]}, user_id=uid)
    redis_server.start()
    breaker_due(m)
    with pytest.raises(SessionExpired):
        m.add_message(sid, "user", "after", user_id=uid)
    doc = m.firestore.get_session(sid)
    assert (doc["status"], doc["end_reason"]) == ("ended", "expired")
    assert contents(m.get_history(sid, user_id=uid).messages) == ["kept in firestore", "answer kept"]
    assert [(q["query"], q["response"]) for q in m.firestore.read_analytics(sid)] == [
        ("kept in firestore", "answer kept")
    ]


def test_memory_held_messages_of_an_expired_session_are_in_its_final_state(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    m.add_message(sid, "user", "zero", user_id=uid)
    live = firestore_down(m)
    redis_server.kill()
    m.add_message(sid, "user", "one", user_id=uid)
    m.add_message(sid, "user", "two", user_id=uid)
    m.firestore = live
    redis_server.start()  # back empty
    breaker_due(m)
    with pytest.raises(SessionExpired):
        m.add_message(sid, "user", "three", user_id=uid)
    assert contents(m.get_history(sid, user_id=uid).messages) == ["one", "two"]


def test_session_created_while_redis_was_down_is_not_expired_when_it_returns(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    redis_server.kill()
    s = m.create_session({}, user_id=uid)
    assert s.storage == "firestore"
    m.add_message(s.session_id, "user", "during", user_id=uid)
    redis_server.start()
    breaker_due(m)
    r = m.add_message(s.session_id, "user", "after", user_id=uid)
    assert (r.storage, r.seq) == ("redis", 2)
    assert contents(m.get_history(s.session_id, user_id=uid).messages) == ["during", "after"]
