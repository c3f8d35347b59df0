"""The instance-memory fallback is bounded by bytes for the whole layer, and at its bounds
it refuses (503) rather than drop messages it already accepted. Pure logic: no store."""

from __future__ import annotations

import pytest

from shared.core.manager import SessionManager
from shared.errors import Unavailable
from shared.settings import Settings

KB = 1024


def manager(**overrides) -> SessionManager:
    return SessionManager(Settings(redis_url=None, firestore_enabled=False, **overrides))


def test_the_layer_is_bounded_by_bytes_and_refuses_past_it():
    m = manager(fallback_max_bytes=1024 * KB, fallback_max_messages=1000)
    sids = [m.create_session({}, user_id=f"u{i}").session_id for i in range(4)]
    accepted: dict[str, list[str]] = {s: [] for s in sids}
    with pytest.raises(Unavailable):
        for i in range(200):  # 200 x 30 KB over four sessions: far past 1 MB
            sid = sids[i % 4]
            content = f"{i} " + "x" * (30 * KB)
            m.add_message(sid, "user", content, user_id=f"u{i % 4}")
            accepted[sid].append(content)
    assert m.memory.stats()["bytes"] <= 1024 * KB
    # nothing accepted was dropped to make room
    for i, sid in enumerate(sids):
        got = [x.content for x in m.get_history(sid, user_id=f"u{i}").messages]
        assert got == accepted[sid]


def test_a_full_session_refuses_instead_of_dropping_its_oldest_message():
    m = manager(fallback_max_messages=3)
    sid = m.create_session({}, user_id="u").session_id
    for i in range(3):
        m.add_message(sid, "user", f"m{i}", user_id="u")
    with pytest.raises(Unavailable):
        m.add_message(sid, "user", "m3", user_id="u")
    assert [x.content for x in m.get_history(sid, user_id="u").messages] == ["m0", "m1", "m2"]


def test_sessions_holding_messages_are_never_evicted_for_new_ones():
    m = manager(fallback_max_sessions=2)
    a = m.create_session({}, user_id="a").session_id
    m.add_message(a, "user", "kept", user_id="a")
    m.create_session({}, user_id="b")  # no messages: may make room for a new session
    m.create_session({}, user_id="c")
    b = m.create_session({}, user_id="d").session_id
    m.add_message(b, "user", "also kept", user_id="d")
    with pytest.raises(Unavailable):
        m.create_session({}, user_id="e")
    assert [x.content for x in m.get_history(a, user_id="a").messages] == ["kept"]


def test_a_session_known_only_here_is_evicted_last():
    from shared.store.base import CreateRequest, SessionState
    from shared.store.memory import MemoryLayer

    layer = MemoryLayer(Settings(fallback_max_sessions=2))

    def state(sid: str) -> SessionState:
        return SessionState(sid, "u", "active", 1.0, 1.0, 0)

    assert layer.create(CreateRequest(state("a" * 32), local_only=True))  # created while both stores were down
    assert layer.create(CreateRequest(state("b" * 32)))  # its state is in a store
    assert layer.create(CreateRequest(state("c" * 32), local_only=True))
    assert layer.has("a" * 32) and not layer.has("b" * 32)
